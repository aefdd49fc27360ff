"""Reading order checked the way a reader checks it: against the PDF's own text blocks.

The blocks of two lines or more of running text (paragraphs, captions, the abstract; not
one-line headings, running heads, a footer or a table) are sorted as a reader reads them: page-wide blocks cut the page into
bands, and in a band the left column's blocks come before the right's. The text under test must
hold each block as one contiguous passage (found by its first words), in that order. A problem is
a block that is not there whole, or a block that comes out before one it follows.
"""

from __future__ import annotations

import re

import pymupdf

from docsynth.core.text import normalise

TWO_LINES = 15  # points: a block at least this tall has two lines (the body is set at 9-10 pt)
KEY_WORDS = 12  # a block is found by its first words (the prose is seeded: no 12 words repeat)
PROSE_WORDS = 4  # words a line, on average, in a block of running text
_WORD = re.compile(r"[a-z]{3,}")


def prose(text: str) -> list[str]:
    """The words of text, without mathematics, numbers and marks: inline formulas come out of
    mupdf in glyph order, which differs between its blocks and its words, and is not reading order."""
    return _WORD.findall(normalise(text))


def _is_prose(text: str) -> bool:
    """Lines of running text, not a table's column of cells (mupdf blocks a table by columns;
    a reader reads it by rows) or a figure's labels."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return sum(len(prose(ln)) for ln in lines) / len(lines) >= PROSE_WORDS


def blocks_in_order(page: pymupdf.Page) -> list[tuple]:
    body = [b for b in page.get_text("blocks") if b[6] == 0 and len(prose(b[4])) >= 4
            and b[3] - b[1] >= TWO_LINES and _is_prose(b[4])]
    if not body:
        return []
    left, right = min(b[0] for b in body), max(b[2] for b in body)
    mid = (left + right) / 2

    def column(b) -> int:  # 0 left, 1 right, 2 across both (a formula may poke into the gutter)
        return 2 if b[2] - b[0] > 0.6 * (right - left) else 0 if (b[0] + b[2]) / 2 < mid else 1

    return in_bands(body, column)


def in_bands(blocks: list[tuple], column) -> list[tuple]:
    """Blocks as a reader takes them: page-wide ones (column 2) cut the page into bands, and in
    a band the left column's blocks (0) come before the right's (1), each top to bottom."""
    wide = sorted((b for b in blocks if column(b) == 2), key=lambda b: b[1])
    narrow = [b for b in blocks if column(b) != 2]
    order, top = [], float("-inf")
    for w in [*wide, None]:
        bottom = w[1] if w else float("inf")
        order += sorted((b for b in narrow if top <= b[1] < bottom), key=lambda b: (column(b), b[1]))
        if w:
            order.append(w)
            top = w[1]
    return order


def problems(page: pymupdf.Page, text: str) -> list[str]:
    """What is wrong with `text` as the reading of `page`: one line per problem."""
    flat = f" {' '.join(prose(text))} "
    found: list[int] = []
    out: list[str] = []
    for b in blocks_in_order(page):
        words = prose(b[4])
        key = " ".join(words[:KEY_WORDS])
        whole = " ".join(words)
        if f" {whole} " not in flat:
            where = flat.find(f" {key} ")
            out.append(f"not whole: {whole[:70]!r}" if where >= 0 else f"missing: {key[:70]!r}")
            if where < 0:
                continue
        else:
            where = flat.index(f" {whole} ")
        if found and where < found[-1]:
            out.append(f"out of order: {key[:70]!r}")
        found.append(where)
    return out
