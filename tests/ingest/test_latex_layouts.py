"""Two-column papers typeset with the journal classes of Debian's texlive-publishers (REVTeX,
ACM, Elsevier, IEEE; tests/ingest/latex/make_latex.py, committed PDFs): a spanning title and
abstract, column and page-wide floats, footnotes and equations. The text layer must come out
column by column on every page, measured two ways: against the PDF's own blocks (page-wide
blocks cut the page into bands; in a band, the left column, then the right), and by the body's
sentence numbers, which rise through the paper."""

from __future__ import annotations

import re
from pathlib import Path

import pymupdf
import pytest

from docsynth.core.text import normalise
from docsynth.ingest.pdf import layer_text
from tests.ingest.columncheck import in_bands

LATEX = Path(__file__).parent / "latex"
PAPERS = sorted(p.name for p in LATEX.glob("*.pdf"))
TWO_LINES = 15  # points: a block at least this tall has two lines (the body is set at 9-10 pt)
KEY_WORDS = 25  # a block is found in the text by its first words (the body repeats phrases of 12)


def reading_order(page: pymupdf.Page) -> list[tuple]:
    """The page's text blocks of two lines or more (paragraphs, captions, the abstract; not
    one-line headings, running heads or a footer with its date pushed right) in reading order,
    from their geometry."""
    mid = page.rect.width / 2
    blocks = [b for b in page.get_text("blocks") if b[6] == 0 and len(normalise(b[4]).split()) >= 4
              and b[3] - b[1] >= TWO_LINES]

    def column(b) -> int:  # 0 left, 1 right, 2 across both
        return 0 if b[2] <= mid + 5 else 1 if b[0] >= mid - 5 else 2

    return in_bands(blocks, column)


def test_the_corpus_has_every_class():
    assert PAPERS == ["acm.pdf", "elsevier.pdf", "ieee.pdf", "revtex.pdf"]


@pytest.mark.parametrize("paper", PAPERS)
def test_every_page_comes_out_column_by_column(paper):
    doc = pymupdf.open(LATEX / paper)
    sentences = []
    for page in doc:
        text = layer_text(page)
        flat = f" {normalise(text)} "
        where = []
        for b in reading_order(page):
            key = " ".join(normalise(b[4]).split()[:KEY_WORDS])
            assert f" {key} " in flat, (paper, page.number, b[4][:80])  # no block lost or cut by another
            where.append(flat.index(f" {key} "))
        assert where == sorted(where), (paper, page.number)
        sentences += [int(n) for n in re.findall(r"Sentence (\d+)", text)]
    assert sentences == sorted(sentences) and len(sentences) >= 80, paper
    first = layer_text(doc[0])
    assert first.index("Abstract text spanning both columns") < first.index("Sentence 0 ")
