"""Both executors run the pipeline they are handed, a stage neither names included
(tests/stage_example: one package, one line in the pipeline); on Ray, verification runs on the
engine actors (the driver's backend is never called) and the dataset is the local executor's."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_recipe
from docsynth.executors.pipeline import PIPELINE
from docsynth.llm.backends import ChatRequest
from tests.conftest import ROOT, text_pdf
from tests.generate.conftest import scripted_session
from tests.run.test_run_resume import dataset_rows
from tests.stage_example import TALLY
from tests.verify.test_stage import GENERATED, PAGE, verifier

WITH_TALLY = (*PIPELINE[:2], TALLY, *PIPELINE[2:])  # the one line: after generate


def answer(req: ChatRequest) -> str:
    """The generator's pairs, or the verifier's re-answers (its requests list the questions)."""
    return verifier(req) if "Questions:" in req.messages[-1]["content"] else json.dumps(GENERATED)


@pytest.fixture
def docs(tmp_path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    for i in range(4):
        text_pdf(d / f"minutes{i}.pdf", [f"Minutes {i}. " + PAGE])
    return d


def recipe(docs: Path) -> Recipe:
    return Recipe.model_validate({
        "name": "tally", "inputs": {"paths": [str(docs)], "docs_per_task": 1},
        "ingest": {"workers": 1, "ocr": {"mode": "never"}},
        "generate": {"guided_json": False, "templates": ["specific_facts"], "max_pages_per_sample": 1},
        "verify": {"enabled": True},
        "ray": {"engine_gpus": 0, "ingest_cpus": 1, "engine_cpus": 1, "tasks_per_batch": 1, "local_cpus": 2,
                "object_store_memory": 200_000_000}})


def rows(folder: Path) -> list[dict]:
    return [r for p in sorted(folder.glob("task-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_the_local_executor_runs_a_stage_it_does_not_name(docs, tmp_path):
    out = tmp_path / "run"
    s = run_recipe(recipe(docs), ROOT, out, session=scripted_session(answer), pipeline=WITH_TALLY)
    assert list(s.stages) == ["ingest", "generate", "tally", "verify", "write"]
    tally = s.stages["tally"]
    assert tally.tasks == s.generate.tasks == 4 and tally.tasks_skipped == 0
    assert tally.samples == s.generate.samples and tally.pairs == s.generate.pairs == 4 * len(GENERATED)
    assert [r["task"] for r in rows(out / "tally")] == [0, 1, 2, 3]
    assert json.loads((out / "run.json").read_text())["tally"]["pairs"] == tally.pairs
    assert s.verify.checked == tally.pairs and s.write.samples_out > 0
    shown = _printed(s)  # `docsynth run`'s tables: every stage, the one it does not know by its counts
    assert re.search(rf"\bpairs\W+{tally.pairs}\b", shown[shown.index("tally"):]), shown
    assert shown.index("tally") < shown.index("verif")

    again = run_recipe(recipe(docs), ROOT, out, session=scripted_session(answer), pipeline=WITH_TALLY)
    assert again.stages["tally"].tasks_skipped == 4 and again.verify.tasks_skipped == 4
    # Without the line, the same run directory is docsynth's own pipeline; its stages are reused.
    plain = run_recipe(recipe(docs), ROOT, out, session=scripted_session(answer))
    assert list(plain.stages) == ["ingest", "generate", "verify", "write"] and plain.generate.tasks_skipped == 4


def _printed(summary) -> str:
    import io

    from rich.console import Console

    from docsynth.cli import common
    from docsynth.cli.run import _print_summary

    real, common.out = common.out, Console(file=io.StringIO(), width=200)
    try:
        _print_summary(summary, 0)
        return common.out.file.getvalue()
    finally:
        common.out = real


@pytest.mark.slow
def test_ray_runs_the_same_pipeline_with_verification_on_its_actors(docs, tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (the ray extra; .ci/test installs it)")
    monkeypatch.setenv("RAY_ADDRESS", "")
    # Ray's workers unpickle the stages and the scripted backend from this repository's tests.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    local = run_recipe(recipe(docs), ROOT, tmp_path / "local", session=scripted_session(answer), pipeline=WITH_TALLY)
    driver = scripted_session(answer)
    on_ray = run_recipe(recipe(docs), ROOT, tmp_path / "ray", session=driver, executor="ray", pipeline=WITH_TALLY)
    assert list(on_ray.stages) == list(local.stages)
    # Generation and verification ran on the engine actor's copy of the backend, none here.
    assert driver.backend.calls == []
    assert on_ray.verify.checked == local.verify.checked > 0 and on_ray.verify.agreed == local.verify.agreed
    for folder in ("tally", "verdicts"):
        assert rows(tmp_path / "ray" / folder) == rows(tmp_path / "local" / folder)
    want = dataset_rows(tmp_path / "local")
    assert want and dataset_rows(tmp_path / "ray") == want
