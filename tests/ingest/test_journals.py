"""Reading order on journal pages as real journals typeset them (tests/ingest/journals: eight
LaTeX classes from Debian's TeX packages, our own seeded prose), checked against the PDF's own
blocks (tests/ingest/columncheck.py). The issue's bar is at most one problem per 20 pages; the
geometric reader has none on this corpus."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from docsynth.ingest.pdf import layer_text
from tests.ingest.columncheck import problems

JOURNALS = Path(__file__).parent / "journals"
PAPERS = sorted(p.name for p in JOURNALS.glob("*.pdf"))


def test_the_corpus_has_every_class():
    assert PAPERS == ["aastex.pdf", "acmart.pdf", "elsarticle.pdf", "ieeeconf.pdf", "ieeetran.pdf", "mnras.pdf",
                      "revtex41.pdf", "revtex42.pdf"]


@pytest.mark.parametrize("paper", PAPERS)
def test_every_page_reads_in_column_order(paper):
    with pymupdf.open(JOURNALS / paper) as doc:
        found = {page.number: problems(page, layer_text(page)) for page in doc}
        assert sum(len(blocks) for blocks in found.values()) == 0, {k: v for k, v in found.items() if v}
        assert doc.page_count >= 4


def _two_columns_on_shared_baselines(gap: float) -> bytes:
    """A page of two justified columns set line by line in one text object, the right column
    `gap` points after the left: below about 9 pt mupdf joins each pair into one line."""
    doc = pymupdf.open()
    page = doc.new_page()
    font = pymupdf.Font("tiro")
    writer = pymupdf.TextWriter(page.rect)
    text = "{} column line {} holds words of prose".format
    width = max(font.text_length(text(side, i), 10) for side in ("Left", "Right") for i in range(12)) + 4
    for i in range(12):
        for x0, side in ((50.0, "Left"), (50.0 + width + gap, "Right")):
            words = text(side, i).split()
            space = (width - sum(font.text_length(w, 10) for w in words)) / (len(words) - 1)
            x = x0
            for w in words:  # justified: the line fills the column exactly, as TeX sets it
                writer.append((x, 80 + 14 * i), w, font=font, fontsize=10)
                x += font.text_length(w, 10) + space
    writer.write_text(page)
    return doc.tobytes()


def test_lines_mupdf_joined_across_a_narrow_gutter_are_split_into_their_columns():
    with pymupdf.open(stream=_two_columns_on_shared_baselines(6.0), filetype="pdf") as doc:
        page = doc[0]
        joined = [ln for b in page.get_text("dict")["blocks"] for ln in b["lines"]
                  if "Left" in "".join(s["text"] for s in ln["spans"]) and "Right" in "".join(s["text"] for s in ln["spans"])]
        assert len(joined) >= 8  # mupdf's own lines: most hold both columns
        lines = layer_text(page).splitlines()
    assert "Left column line 0 holds words of prose" in lines and "Right column line 0 holds words of prose" in lines
    text = "\n".join(lines)
    assert text.index("Left column line 11") < text.index("Right column line 0 ")
