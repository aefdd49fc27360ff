"""Near-duplicates across a whole ingest run (ingest.dedup): a document's re-saved, re-ordered and
one-page-changed copies are dropped, naming the first copy in input order; a page copied into
another document is dropped alone; distinct documents are untouched; generate leaves the dropped
out; the decision does not redo any ingest task."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pymupdf
import pytest

from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_generate, run_ingest, run_write
from tests.generate.conftest import scripted_session
from tests.pages import synthetic_pdf


def recipe(**dedup) -> Recipe:
    return Recipe.model_validate({"ingest": {"workers": 2, "ocr": {"mode": "never"}, "dedup": dedup},
                                  "inputs": {"paths": ["docs"], "docs_per_task": 2},
                                  "generate": {"guided_json": False, "max_pages_per_sample": 1}})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """a: 10 distinct pages; b: a re-saved (other bytes); c: a's pages in reverse; d: a with page 4
    replaced; e: a distinct document; f: distinct pages with a copy of a's page 1 among them."""
    base = tmp_path_factory.mktemp("dedup")
    docs = base / "docs"
    docs.mkdir()
    a = synthetic_pdf(10, seed=40)
    (docs / "a_original.pdf").write_bytes(a)
    src = pymupdf.open(stream=a)
    (docs / "b_resaved.pdf").write_bytes(src.tobytes(garbage=4, deflate=True, clean=True))
    rev = pymupdf.open(stream=a)
    rev.select(list(range(9, -1, -1)))
    (docs / "c_reordered.pdf").write_bytes(rev.tobytes(garbage=4))
    changed = pymupdf.open(stream=a)
    changed.delete_page(4)
    changed.insert_pdf(pymupdf.open(stream=synthetic_pdf(1, seed=41)), start_at=4)
    (docs / "d_one_page_changed.pdf").write_bytes(changed.tobytes())
    (docs / "e_distinct.pdf").write_bytes(synthetic_pdf(6, seed=42))
    f = pymupdf.open(stream=synthetic_pdf(5, seed=43))
    f.insert_pdf(src, from_page=1, to_page=1, start_at=2)
    (docs / "f_shares_a_page.pdf").write_bytes(f.tobytes())
    assert len({p.read_bytes() for p in docs.iterdir()}) == 6
    return base


def _rejects(run) -> list[dict]:
    return [json.loads(x) for x in (run / "rejects.jsonl").read_text().splitlines()]


def test_copies_are_dropped_naming_the_first_and_distinct_documents_are_untouched(base, tmp_path):
    run = tmp_path / "run"
    s = run_ingest(recipe(documents=True, pages=True), base, run)
    assert s.duplicates == {"documents": 3, "pages": 1}
    by_doc = {r["source"].rsplit("/", 1)[-1]: r for r in _rejects(run) if r["reason"].startswith("near-duplicate")
              and r["page"] is None}
    assert set(by_doc) == {"b_resaved.pdf", "c_reordered.pdf", "d_one_page_changed.pdf"}
    assert all("(" + str(base / "docs" / "a_original.pdf") in r["reason"] for r in by_doc.values())
    page = [r for r in _rejects(run) if r["reason"].startswith("near-duplicate") and r["page"] is not None]
    assert [(p["source"].rsplit("/", 1)[-1], p["page"]) for p in page] == [("f_shares_a_page.pdf", 2)]
    assert "page 1 of document" in page[0]["reason"] and "a_original.pdf" in page[0]["reason"]
    run_generate(recipe(documents=True, pages=True), base, run, run, session=scripted_session())
    rows = [r for f in sorted((run / "candidates").glob("*.parquet")) for r in pq.read_table(f, columns=["source", "pages"]).to_pylist()]
    kept = {(r["source"].rsplit("/", 1)[-1], tuple(r["pages"])) for r in rows}
    assert {s for s, _ in kept} == {"a_original.pdf", "e_distinct.pdf", "f_shares_a_page.pdf"}
    assert ("f_shares_a_page.pdf", (2,)) not in kept and ("f_shares_a_page.pdf", (3,)) in kept
    assert len([k for k in kept if k[0] == "a_original.pdf"]) == 10
    w = run_write(recipe(documents=True, pages=True).model_copy(update={"filters": []}), run)
    assert w.duplicates == {"documents": 3, "pages": 1}
    assert "Near-duplicates left out at ingest (`ingest.dedup`, the first copy kept): 3 documents, 1 pages" in \
        (run / "dataset" / "README.md").read_text()


def test_without_dedup_nothing_is_dropped_and_turning_it_on_redoes_no_page(base, tmp_path):
    run = tmp_path / "run"
    s = run_ingest(recipe(), base, run)
    assert s.duplicates == {"documents": 0, "pages": 0} and not (run / "duplicates.json").exists()
    again = run_ingest(recipe(pages=True), base, run)
    assert again.tasks_skipped == again.tasks and again.pages_this_run == 0
    # pages alone: every page of b and c is one of a's; d keeps its new page; f loses its copy
    assert again.duplicates == {"documents": 0, "pages": 10 + 10 + 9 + 1}
    assert json.loads((run / "duplicates.json").read_text())["pages"]
    off = run_ingest(recipe(), base, run)
    assert off.duplicates == {"documents": 0, "pages": 0} and not (run / "duplicates.json").exists()
