"""The recipe's decontaminate: section in the write stage: a sample whose page is in an evaluation
set is dropped whole, a pair whose question copies one is dropped alone, flag keeps both, every
hit is reported, the run's hashes are kept, and a bad evaluation set stops the write before any
work."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from docsynth.core.errors import DocsynthError
from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_generate, run_ingest, run_write
from tests.conftest import ROOT
from tests.dataset.decontam_data import docvqa_set
from tests.generate.conftest import scripted_session
from tests.pages import synthetic_pdf, word


def answer(req) -> str:
    """Two pairs about made-up names drawn from the request's seed: every sample asks its own."""
    rng = random.Random(req.seed)
    w = [word(rng) for _ in range(5)]
    return json.dumps([{"question": f"Which {w[0]} of the {w[1]} board approved the {w[2]} budget in March?",
                        "answer": f"The {w[3]} committee"},
                       {"question": f"How large is the {w[4]} budget?", "answer": "4.2 million euros"}])


def recipe(**decontaminate) -> Recipe:
    return Recipe.model_validate({"name": "harbour", "ingest": {"workers": 1, "ocr": {"mode": "never"}},
                                  "generate": {"guided_json": False, "max_pages_per_sample": 1},
                                  "inputs": {"paths": ["docs"], "docs_per_task": 2}, "filters": [],
                                  "decontaminate": decontaminate})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Four documents of two distinct synthetic pages each, ingested and generated; an evaluation
    set (relative to the recipe's folder) with a half-size re-encoded copy of one page, and an
    edited copy of one question of another document."""
    base = tmp_path_factory.mktemp("base")
    (base / "docs").mkdir()
    for i in range(4):
        (base / "docs" / f"doc{i}.pdf").write_bytes(synthetic_pdf(2, seed=20 + i))
    run = base / "run"
    r = recipe()
    run_ingest(r, base, run)
    run_generate(r, base, run, run, session=scripted_session(answer))
    read = lambda folder: [r for f in sorted((run / folder).glob("*.parquet")) for r in pq.read_table(f).to_pylist()]  # noqa: E731
    pages = read("pages")
    page = next(p for p in pages if p["source"].endswith("doc1.pdf") and p["page"] == 1)
    im = Image.open(io.BytesIO(page["image"]))
    small = io.BytesIO()
    im.resize((im.width // 2, im.height // 2)).save(small, "JPEG", quality=75)
    cands = read("candidates")
    other = next(c for c in cands if c["source"].endswith("doc3.pdf"))
    copied = other["questions"][0]
    docvqa_set(base / "eval" / "test.parquet", [small.getvalue(), None],
               [copied.replace("Which ", "What "), "Who wrote the unrelated report on tariffs?"],
               [["finance"], ["nobody"]])
    return {"base": base, "run": run, "copied": copied, "page": page, "other": other}


AGAINST = [{"name": "docvqa", "path": "eval", "adapter": {"kind": "qa", "answer": "answers"}}]


def _rejects(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "filter-rejects.jsonl").read_text().splitlines()]


def test_write_drops_a_copied_page_whole_and_a_copied_question_alone(run):
    s = run_write(recipe(against=AGAINST), run["run"], base=run["base"])
    d = s.decontamination
    assert d["rows_marked"] == 1 and d["turns_marked"] == 1 and d["hits"]["docvqa"] == {"image": 1, "question": 1}
    assert s.dropped == {"decontaminate": 3}  # the copied page's two pairs, and the copied question
    rejects = _rejects(run["run"])
    page_out = [r for r in rejects if r["reason"].startswith("decontaminate: page image matches docvqa row 0")]
    assert {(r["source"], r["page"]) for r in page_out} == {(run["page"]["source"], 1)} and len(page_out) == 2
    assert [r["question"] for r in rejects if "question matches docvqa row 0" in r["reason"]] == [run["copied"]]
    report = [json.loads(x) for x in (run["run"] / "decontamination.jsonl").read_text().splitlines()]
    assert {(h["kind"], h["eval_id"], h["turn"]) for h in report} == {("image", 0, None), ("question", 0, 0)}
    assert {h["sample"] for h in report if h["kind"] == "question"} == {run["other"]["sample_id"]}
    texts = [t["user"] for row in pq.read_table(run["run"] / "dataset" / "data").column("texts").to_pylist() for t in row]
    assert run["copied"] not in texts and len(texts) == s.pairs_out == s.pairs_in - 3
    card = (run["run"] / "dataset" / "README.md").read_text()
    assert "## Decontamination" in card and "| docvqa | 2 | 1 | 2 | 1 | 1 | 0 |" in card


def test_flag_keeps_the_hits_and_reports_them_and_the_run_is_not_hashed_again(run):
    hashed = sorted((run["run"] / "hashes" / "candidates").glob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in hashed]
    s = run_write(recipe(against=AGAINST, action="flag"), run["run"], base=run["base"])
    assert not s.reused and s.pairs_out == s.pairs_in and s.dropped == {}
    assert s.decontamination["rows_marked"] == 1 and s.decontamination["rows_dropped"] == 0
    assert len((run["run"] / "decontamination.jsonl").read_text().splitlines()) == 2
    assert hashed and [p.stat().st_mtime_ns for p in hashed] == stamps  # read back, not made again
    assert "kept and flagged" in (run["run"] / "dataset" / "README.md").read_text()


def test_a_bad_evaluation_set_stops_the_write_before_any_work(run, tmp_path):
    (run["base"] / "bad").mkdir(exist_ok=True)
    (run["base"] / "bad" / "test.parquet").write_bytes(b"PAR1 broken")
    out = tmp_path / "out"
    with pytest.raises(DocsynthError, match=r"evaluation set 'bad'.*not a readable parquet file"):
        run_write(recipe(against=[{"name": "bad", "path": "bad"}]), run["run"], out, base=run["base"])
    assert not (out / "data").exists() and not (out / "README.md").exists()  # (the lock made the folder)


def test_the_recipe_reference_lists_the_section():
    text = (ROOT / "docs" / "recipes.md").read_text()
    assert "decontaminate.images.max_distance" in text and "decontaminate.against" in text
