"""A whole recipe in one run directory: every stage reuses its finished work while its config and
inputs are unchanged, asserted from the run's own records (run.json), not from timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_recipe
from tests.conftest import ROOT, text_pdf
from tests.generate.conftest import scripted_session

FACTS = "The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros."


def answer(req) -> str:
    return json.dumps([{"question": "How large is the approved budget?", "answer": "4.2 million euros"},
                       {"question": "Who founded the harbour?", "answer": "Lord Smith"}])


@pytest.fixture
def docs(tmp_path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    for i in range(3):
        text_pdf(d / f"doc{i}.pdf", [f"Minutes {i}. " + FACTS] * 2)
    return d


def recipe(docs: Path, **over) -> Recipe:
    return Recipe.model_validate({"name": "harbour", "inputs": {"paths": [str(docs)], "docs_per_task": 1},
                                  "ingest": {"workers": 1, "ocr": {"mode": "never"}},
                                  "generate": {"guided_json": False}, **over})


def stages(out: Path) -> dict:
    r = json.loads((out / "run.json").read_text())
    return {"ingest": r["ingest"]["tasks"] - r["ingest"]["tasks_skipped"],
            "generate": r["generate"]["tasks"] - r["generate"]["tasks_skipped"],
            "write": not r["write"]["reused"]}


def test_each_stage_is_redone_only_when_its_own_config_or_inputs_change(docs, tmp_path):
    out = tmp_path / "run"
    s = run_recipe(recipe(docs), ROOT, out, session=scripted_session(answer))
    assert stages(out) == {"ingest": 3, "generate": 3, "write": True}
    assert s.write.samples_out == 3 and s.write.pairs_out == 3 and s.write.dropped == {"grounded": 3}
    run_recipe(recipe(docs), ROOT, out, session=scripted_session(answer))
    assert stages(out) == {"ingest": 0, "generate": 0, "write": False}
    run_recipe(recipe(docs, filters=["code"]), ROOT, out, session=scripted_session(answer))
    assert stages(out) == {"ingest": 0, "generate": 0, "write": True}  # only the filters changed
    assert json.loads((out / "run.json").read_text())["write"]["pairs_out"] == 6
    run_recipe(recipe(docs, filters=["code"], generate={"guided_json": False, "pairs_per_page": 2}), ROOT, out,
               session=scripted_session(answer))
    assert stages(out) == {"ingest": 0, "generate": 3, "write": True}  # a prompt value changed
    run_recipe(recipe(docs, filters=["code"], generate={"guided_json": False, "pairs_per_page": 2}), ROOT, out,
               force=["generate"], session=scripted_session(answer))
    # forced: regenerated, byte for byte the same (a deterministic model), so the dataset, keyed by
    # the shards' sha256, is kept as it is
    assert stages(out) == {"ingest": 0, "generate": 3, "write": False}
    assert json.loads((out / "run.json").read_text())["forced"] == ["generate"]


def test_force_names_a_stage(docs, tmp_path):
    from docsynth.core.errors import DocsynthError

    with pytest.raises(DocsynthError, match="--force: no stage 'filters'"):
        run_recipe(recipe(docs), ROOT, tmp_path / "run", force=["filters"], session=scripted_session(answer))


def scanned(src: Path, dest: Path) -> Path:
    """An image-only copy of a PDF (200 dpi grey scans), which ingest must OCR: slow on purpose."""
    import pymupdf

    out = pymupdf.open()
    for page in pymupdf.open(src):
        pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
        out.new_page(width=page.rect.width, height=page.rect.height).insert_image(page.rect, stream=pix.tobytes("png"))
    out.save(dest)
    return dest


def test_generation_runs_beside_ingest_and_takes_shards_as_they_finish(tmp_path):
    """Two scanned documents, one ingest worker: generation starts on the first shard while the
    second is still being OCRed (real tesseract), not after ingest has finished."""
    import time

    d = tmp_path / "scans"
    d.mkdir()
    for i in range(2):
        scanned(text_pdf(tmp_path / f"t{i}.pdf", [f"Minutes {i}. " + FACTS * 6] * 2), d / f"scan{i}.pdf")
    first: list[float] = []

    def answer_and_time(req):
        first.append(time.time())
        return answer(req)

    r = Recipe.model_validate({"name": "harbour", "inputs": {"paths": [str(d)], "docs_per_task": 1},
                               "ingest": {"workers": 1}, "generate": {"guided_json": False}})
    s = run_recipe(r, ROOT, tmp_path / "run", session=scripted_session(answer_and_time))
    markers = sorted(p.stat().st_mtime for p in (tmp_path / "run" / "pages").glob("*.done.json"))
    assert len(markers) == 2 and s.ingest.pages_by_source == {"ocr": 4}
    assert markers[0] <= first[0] < markers[1]  # after the first shard, before the last
    assert s.generate.samples == 2 and s.write.samples_out == 2


def test_an_ingest_failure_is_the_error_reported(tmp_path):
    from docsynth.core.errors import DocsynthError

    r = recipe(tmp_path / "missing")
    with pytest.raises(DocsynthError, match="input not found"):
        run_recipe(r, ROOT, tmp_path / "run", session=scripted_session(answer))
