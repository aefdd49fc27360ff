"""Page-range tasks (docsynth.ingest.split): a large document is split into tasks of
inputs.pages_per_task pages, with the same pages, in the same order, as when it is taken whole;
a kill in the middle of a range, then a rerun, gives the same pages."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from docsynth.executors.local import run_ingest
from docsynth.ingest.view import iter_pages
from tests.cli import argv as _cli
from docsynth.config.recipe import Recipe
from tests.conftest import text_pdf
from tests.generate.test_openai_backend import StandIn, ok

FACT = re.compile(r"pump P\d+")  # what the stand-in model answers: the first pump its request names



def recipe(src: Path, **inputs) -> Recipe:
    return Recipe.model_validate({"inputs": {"paths": [str(src)], "docs_per_task": 8, **inputs},
                                  "ingest": {"workers": 2, "ocr": {"mode": "never"}}})


def _rows(out: Path) -> list[tuple]:
    return [(p["doc_id"], p["page"], p["num_pages"], p["text"], hashlib.sha256(p["image"]).hexdigest())
            for p in iter_pages(out)]


def _corpus(d: Path) -> Path:
    d.mkdir()
    text_pdf(d / "a_small.pdf", ["A small note about the harbour."] * 2)
    text_pdf(d / "b_manual.pdf", [f"Manual page {i}: the valve V{i} is checked every {i + 2} days." for i in range(40)])
    text_pdf(d / "c_small.pdf", ["Another note, on the lighthouse."] * 3)
    (d / "d_broken.pdf").write_bytes(b"%PDF-1.4 not really " * 20)  # large enough to be counted; does not open
    return d


def test_a_large_document_is_split_into_page_ranges_with_the_same_pages_in_the_same_order(tmp_path):
    src = _corpus(tmp_path / "in")
    whole = run_ingest(recipe(src, pages_per_task=100), Path("/"), tmp_path / "whole")
    split = run_ingest(recipe(src, pages_per_task=16, split_bytes=100), Path("/"), tmp_path / "split")
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    assert (whole.tasks, split.tasks) == (1, 5)  # [a], b 0-15, 16-31, 32-39, [c, d]
    assert split.docs == whole.docs == 4 and split.pages == whole.pages == 45
    rejects = [json.loads(x) for x in (tmp_path / "split" / "rejects.jsonl").read_text().splitlines()]
    assert [r["source"].rsplit("/", 1)[-1] for r in rejects] == ["d_broken.pdf"]  # said once
    pages = [sorted({p["page"] for p in iter_pages(tmp_path / "split") if p["doc_id"] == doc})
             for doc in {p["doc_id"] for p in iter_pages(tmp_path / "split") if p["num_pages"] == 40}]
    assert pages == [list(range(40))]
    again = run_ingest(recipe(src, pages_per_task=16, split_bytes=100), Path("/"), tmp_path / "split")
    assert (again.tasks, again.tasks_skipped) == (5, 5)


@pytest.mark.slow
def test_a_kill_in_the_middle_of_a_page_range_then_a_rerun_gives_the_same_pages_and_dataset(tmp_path, monkeypatch):
    server = StandIn(lambda n, body: ok(json.dumps([{"question": "Which pump is named on this page?",
                                                      "answer": FACT.search(json.dumps(body))[0]}])))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    src = tmp_path / "in"
    src.mkdir()
    text_pdf(src / "manual.pdf", [f"Section {i}. The pump P{i} runs at {10 * i} litres a minute." for i in range(24)])
    rec = tmp_path / "r.yaml"
    # OCR on every page makes a range take seconds, so the kill lands inside one
    rec.write_text(f"inputs: {{paths: ['{src}'], pages_per_task: 6, split_bytes: 1}}\n"
                   "ingest: {workers: 1, ocr: {mode: always}}\n"
                   "generate: {backend: openai, model: stand-in, context_tokens: 2048,\n"
                   f"  openai: {{base_url: '{server.url}'}}}}\n")
    args = ["run", str(rec), "--json"]
    try:
        subprocess.run(_cli(*args, "--out", str(tmp_path / "clean")), check=True, capture_output=True)

        out = tmp_path / "killed"
        proc = subprocess.Popen(_cli(*args, "--out", str(out)), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120

        def mid_range() -> bool:  # a range finished, and the next one on a page (its breadcrumb)
            done = {p.name.split(".")[0] for p in (out / "pages").glob("*.done.json")}
            crumbs = {p.name.split(".")[0] for p in (out / "pages").glob("task-*.current.json")}
            return bool(done) and bool(crumbs - done)

        while not mid_range() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        finished = len(list((out / "pages").glob("*.done.json")))
        assert 1 <= finished < 4
        res = subprocess.run(_cli(*args, "--out", str(out)), check=True, capture_output=True, text=True)
    finally:
        server.close()
    s = json.loads(res.stdout)["ingest"]
    assert (s["tasks"], s["tasks_skipped"], s["docs"], s["pages"]) == (4, finished, 1, 24)
    assert _rows(out) == _rows(tmp_path / "clean")
    assert _dataset(out) == _dataset(tmp_path / "clean") and _dataset(out)
    assert not list((out / "pages").glob(".*.tmp"))


def _dataset(run: Path) -> list:
    """The dataset's samples, in order: their pairs, source and images' bytes, hashed."""
    import docsynth

    return [(s.pairs, s.source, [hashlib.sha256(i).hexdigest() for i in s.images])
            for s in docsynth.open_dataset(run / "dataset").samples()]


def test_a_task_travels_without_its_documents_and_reads_them_from_its_plan_line(tmp_path):
    import pickle

    from docsynth.core.errors import DocsynthError
    from docsynth.executors.pipeline import ingest_stage

    src = _corpus(tmp_path / "in")
    for i in range(40):  # many small documents: what a pickle with its documents would grow with
        text_pdf(src / f"e{i:02d}.pdf", [f"Short note {i}."])
    stage = ingest_stage(recipe(src, pages_per_task=16, split_bytes=100), Path("/"), tmp_path / "out")
    stage.begin()
    tasks = sorted(stage.plan(), key=lambda t: t.index)
    wire = [pickle.dumps(t) for t in tasks]
    assert max(len(w) for w in wire) < 400  # the documents' paths and ids are not in it
    back = [pickle.loads(w) for w in wire]
    assert [[d.doc_id for d in t.docs] for t in back] == [[d.doc_id for d in t.docs] for t in tasks]
    assert sum(t.parts for t in back) == sum(len(t.docs) for t in back) == 3 + 3 + 40  # b in 3 ranges
    # a plan file rewritten under a task (another plan's line at its offset) is an error, not other documents
    other = pickle.loads(wire[1])
    other.key = "not-this-task"
    with pytest.raises(DocsynthError, match="another task's"):
        list(other.docs)
