"""The deterministic checks of issue 30: the evidence check refuses a moved or altered span, the
type check a "when" question with no date; and the page gate on real and made pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsynth.config.gate import PageGateConfig
from docsynth.core.qatype import type_check
from docsynth.config.recipe import IngestConfig
from docsynth.core.spans import Evidence, extract_spans, evidence_holds, options_for
from docsynth.generate.gate import gate, repeated_lines
from docsynth.ingest.pages import file_page_texts
from tests.conftest import text_pdf

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pdfs"
LAYER = IngestConfig.model_validate({"ocr": {"mode": "never"}})


@pytest.fixture(scope="module")
def page() -> tuple[str, dict]:
    text = file_page_texts(SAMPLES / "annual_report.pdf", LAYER)[1]
    s = next(s for s in extract_spans(text) if s.text == "81.2 million pounds")
    return text, Evidence(1, s.start, s.end, s.kind, s.key, s.text).to_dict()


def test_the_evidence_check_holds_for_the_span_at_its_place(page):
    text, ev = page
    assert evidence_holds(text, ev, "81.2 million pounds")[0] is True


def test_the_evidence_check_refuses_a_moved_span(page):
    text, ev = page
    moved = {**ev, "start": ev["start"] + 3, "end": ev["end"] + 3}
    ok, why = evidence_holds(text, moved, "81.2 million pounds")
    assert ok is False and "not at" in why
    elsewhere = text.index("17.1 million pounds")  # another figure's place, same length
    assert evidence_holds(text, {**ev, "start": elsewhere, "end": elsewhere + len(ev["text"])},
                          "81.2 million pounds")[0] is False
    assert evidence_holds(text, {**ev, "start": len(text) - 2, "end": len(text) + 17}, "81.2 million pounds")[0] is False


def test_the_evidence_check_refuses_an_altered_span_or_answer(page):
    text, ev = page
    assert evidence_holds(text, {**ev, "text": "18.2 million pounds"}, "18.2 million pounds")[0] is False
    assert evidence_holds(text, ev, "17.1 million pounds")[0] is False  # the answer is not its span
    altered = text[:ev["start"]] + "91.2" + text[ev["start"] + 4:]  # the page changed under the span
    assert evidence_holds(altered, ev, "81.2 million pounds")[0] is False
    assert evidence_holds(text, None, "81.2 million pounds")[0] is None  # model-first: nothing to check


@pytest.mark.parametrize("question,answer,expect", [
    ("When was the report approved by the board?", "18 March 2024", True),
    ("When is the invoice due?", "PO-55190", False),
    ("How many samples were taken?", "18,620", True),
    ("How many samples were taken?", "the treatment works", False),
    ("What is the order number?", "12 February 2023", False),  # issue 30's quickstart pair
    ("What is the invoice number?", "INV-2024-00871", True),
    ("Who joined the board as a civil engineer?", "Daniel Weiss", True),
    ("Who joined the board?", "1,874", False),
    ("What were the operating costs?", "81.2 million pounds", None),  # sets no type
])
def test_the_type_check(question, answer, expect):
    assert type_check(question, answer)[0] is expect


def test_choice_options_are_the_nearest_rivals_of_the_same_kind(page):
    text, _ = page
    found = [(1, s) for s in extract_spans(text)]
    ref = next(s for _, s in found if s.text == "18,604")
    opts = options_for(found, ref, 4)
    assert opts[0] == "18,604" and "18,620" in opts and len(opts) == 4
    assert not [o for o in opts if "2025" in o]
    date = next(s for _, s in found if s.kind == "amount")
    assert all("pounds" in o or "percent" in o or o.replace(",", "").replace(".", "").isdigit() or " " in o
               for o in options_for(found, date, 6))


def test_the_gate_passes_every_sample_page():
    cfg = PageGateConfig()
    for pdf in SAMPLES.glob("*.pdf"):
        texts = file_page_texts(pdf, LAYER)
        rep = repeated_lines(texts, cfg)
        assert [gate(t, cfg, rep) for t in texts if t.strip()] == [None] * len([t for t in texts if t.strip()]), pdf


def test_the_gate_on_real_rendered_pages(tmp_path):
    toc = "Contents\n" + "\n".join(f"{i}. Chapter on topic {i} ........ {4 * i}" for i in range(1, 10))
    index = "Index\n" + "\n".join(f"term number {w}, {i}, {i + 7}" for i, w in enumerate("abcdefghij", 3))
    refs = "References\n" + "\n".join(f"[{i}] A. Author et al. (20{10 + i}). A paper title. Journal {i}, pp. 1-9."
                                      for i in range(1, 9))
    body = ("The harbour board met on 3 March 2024 and approved a budget of 4.2 million euros for the new "
            "quay, which will be finished in 2026 after two years of work.")
    pdf = text_pdf(tmp_path / "doc.pdf", ["Annual Report", toc, body, index, refs])
    cfg = PageGateConfig()
    texts = file_page_texts(pdf, LAYER)
    assert [gate(t, cfg) for t in texts] == ["near-empty", "table of contents", None, "index", "references"]
    assert [gate(t, cfg.model_copy(update={"min_words": 0})) for t in texts][0] is None


def test_running_heads_and_footers_alone_are_boilerplate():
    cfg = PageGateConfig()
    head, foot = "Riverside Water Authority - Annual Report 2023", "Confidential - not for distribution. Page {}"
    bodies = ["The network comprises 3,140 kilometres of mains, 14 pumping stations and 6 treatment works.",
              "Leakage fell from 17.2 percent to 15.8 percent of water put into supply, the lowest level recorded.",
              "Revenue rose by 4.1 percent to 118.6 million pounds, mainly because of the tariff increase.",
              "The board met eleven times during the year, and attendance was 96 percent of its members."]
    pages = [f"{head}\n{b}\n{foot.format(i)}" for i, b in enumerate(bodies)] + [f"{head}\nNotes\n{foot.format(9)}"]
    rep = repeated_lines(pages, cfg)
    assert [gate(p, cfg, rep) for p in pages] == [None, None, None, None, "boilerplate"]
