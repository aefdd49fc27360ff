"""The labelled set behind bench/quality.py (tests/data/quality/labelled.jsonl): well formed,
labelled against the real pages of sample_pdfs/, and the agreement rules tell every hand-made
wrong variant from the correct answer it was made from."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pymupdf

from docsynth.core.agree import agreement
from docsynth.core.text import normalise
from tests.conftest import SAMPLES

DATA = Path(__file__).parent / "data" / "quality"


def _rows() -> list[dict]:
    return [json.loads(x) for x in (DATA / "labelled.jsonl").read_text().splitlines() if x.strip()]


def test_the_set_is_large_enough_and_every_pair_is_labelled():
    rows = _rows()
    assert len(rows) >= 150
    assert {r["label"] for r in rows} <= {"correct", "partly", "wrong"}
    models = Counter(r["model"] for r in rows)
    assert models["gemma-3-270m"] >= 50 and models["qwen2.5-coder-1.5b"] >= 40 and models["variant"] >= 50
    assert all(r["question"].strip() and r["answer"].strip() and r["context"].strip() for r in rows)


def test_each_context_is_the_text_layer_of_its_page():
    for r in _rows():
        doc, _, page = r["source"].rpartition(" page ")
        if doc == "scanned_report.pdf":
            continue  # image only: its context is tesseract's reading
        with pymupdf.open(SAMPLES / doc) as pdf:
            text = pdf[int(page)].get_text()
        got, want = set(normalise(r["context"]).split()), set(normalise(text).split())
        assert len(got & want) / len(got | want) > 0.95, r["source"]  # docsynth's reading order may differ


def test_hand_pairs_are_on_their_page_and_their_variants_disagree_with_them():
    rows = _rows()
    truth = {(r["source"], r["question"]): r["answer"] for r in rows if r["model"] == "hand"}
    assert len(truth) >= 25
    for (source, _), answer in truth.items():
        page = normalise(next(r["context"] for r in rows if r["source"] == source))
        assert all(w in page for w in normalise(answer).split() if w.isdigit()), (source, answer)
    variants = [r for r in rows if r["model"] == "variant"]
    assert {r["kind"] for r in variants} == {"swapped", "number", "other page"}
    for v in variants:
        assert v["label"] == "wrong"
        original = truth[(v["source"], v["question"])]
        assert not agreement(original, v["answer"]).agree, (original, v["answer"])


def test_answer_first_pairs_carry_evidence_that_holds_on_their_page():
    from docsynth.core.spans import evidence_holds

    first = [r for r in _rows() if r.get("strategy") == "answer_first"]
    assert len(first) >= 40 and {r["label"] for r in first} == {"correct", "partly", "wrong"}
    for r in first:
        assert evidence_holds(r["context"], r["evidence"], r["answer"])[0] is True, r["question"]
