"""Reading order for a page's text lines, from their geometry alone.

Content-stream order is unreliable (some producers write two-column text line by
line across the page) and sorting by position interleaves columns. We find prose
column gutters, cut the page into horizontal sections at lines that cross a
gutter (titles, full-width figures), and read each section column by column,
recursing for nested columns. Regions without prose columns (forms, tables) are
read row by row, so a key stays beside its value and a table row stays whole.

Measured on journal papers of eight LaTeX classes (tests/ingest/journals, checked against the
PDF's own blocks by tests/ingest/columncheck.py): three cases broke a plain gutter reading, each
handled below. A last page whose right column holds two lines; a line of a page-wide passage
that mupdf cut in two at an inline formula, one half of which does not reach the gutter; and
lines of two columns that share a baseline, which mupdf can join into one line (the gutter is
then a gap between its words, not between lines).
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

from docsynth.ingest.tables import find_tables, markdown, row_cells

# A gutter must be at least this many median line heights wide ...
_GUTTER_MIN = 0.4
# ... and split the region into columns each at least this share of its width,
_COL_MIN_SHARE = 0.22
# the larger holding at least this many lines of prose (this many words), and in each at least
# this share of its lines prose.
_COL_MIN_LINES = 3
_PROSE_WORDS = 4
_PROSE_SHARE = 0.1
# A column of fewer lines than that must have a line this share of the other's median width.
_SHORT_WIDTH = 0.8
# Words of a row further apart than this many line heights are in different table cells (a
# space is about 0.3; LaTeX's column gap 1.2, less beside a right-aligned number).
_CELL_GAP = 0.5
# Words further apart than this many times a line's median space are in different runs.
_RUN_GAP = 1.5
# Rows of two prose lines side by side from which a page's reading is in doubt (see read()).
DOUBTFUL_ROWS = 6
# A run of words whose middle is this share of the width from the page's is centred.
_CENTRED = 0.03
# Words on one mupdf line further apart than this many line heights are two lines.
_SPLIT_GAP = 1.0


@dataclass(slots=True)
class Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    words: int
    parts: list[tuple]  # its pymupdf word tuples, left to right

    def runs(self, gap: float) -> list[list[tuple]]:
        """Its words in runs, cut where two words are more than `gap` apart and further apart
        than its other words (a monospaced font's spaces are 0.6 em; a gutter is wider)."""
        gaps = [b[0] - a[2] for a, b in zip(self.parts, self.parts[1:])]
        gap = max(gap, _RUN_GAP * statistics.median(gaps)) if gaps else gap
        out = [[self.parts[0]]]
        for w in self.parts[1:]:
            if w[0] - out[-1][-1][2] > gap:
                out.append([])
            out[-1].append(w)
        return out


def lines_from_words(words: list[tuple]) -> list[Line]:
    """Build lines from pymupdf 'words' tuples, splitting lines at wide gaps."""
    grouped: dict[tuple[int, int], list[tuple]] = {}
    for w in words:
        grouped.setdefault((w[5], w[6]), []).append(w)
    lines: list[Line] = []
    for ws in grouped.values():
        ws.sort(key=lambda w: w[0])
        # The median, not the tallest: one big operator (a sum sign's box is three lines tall)
        # would otherwise keep two columns' words on one line.
        height = statistics.median(w[3] - w[1] for w in ws) or 1.0
        run = [ws[0]]
        for w in ws[1:]:
            if w[0] - run[-1][2] > _SPLIT_GAP * height:
                lines.append(make_line(run))
                run = []
            run.append(w)
        lines.append(make_line(run))
    return lines


def make_line(ws: list[tuple]) -> Line:
    return Line(min(w[0] for w in ws), min(w[1] for w in ws), max(w[2] for w in ws),
                max(w[3] for w in ws), " ".join(w[4] for w in ws), len(ws), ws)


def read(lines: list[Line]) -> tuple[str, int]:
    """The page text in reading order, and how many of its rows joined two lines of prose side
    by side: the sign of columns the geometry did not find (DOUBTFUL_ROWS or more), where the
    layout model reads the page instead (ingest.layout: auto). Inline formulas cut a few rows
    anyway: 0 to 5 a page on the journal corpus and the held-out samples, 0 on sample_pdfs; the
    old reader's interleaved pages had 10 to 30."""
    if not lines:
        return "", 0
    unit = statistics.median(ln.y1 - ln.y0 for ln in lines) or 1.0
    out: list[str] = []
    doubtful = 0
    for chunk in order_chunks(lines, unit):
        rows = _rows(chunk)
        cells = [row_cells(row, _CELL_GAP * unit) for row in rows]
        tables = {start: (end, grid) for start, end, grid in find_tables(cells)}
        prev = None
        i = 0
        while i < len(rows):
            row = rows[i]
            if prev is not None and row[0].y0 - max(ln.y1 for ln in prev) > 0.8 * unit:
                out.append("")
            if i in tables:  # a table: Markdown rows with its header, set apart as a paragraph
                if out and out[-1]:
                    out.append("")
                end, grid = tables[i]
                out += markdown(grid)
                out.append("")
                prev, i = None, end
                continue
            doubtful += sum(a.words >= _PROSE_WORDS and b.words >= _PROSE_WORDS for a, b in zip(row, row[1:]))
            out.append(" ".join(ln.text for ln in row))
            prev = row
            i += 1
        out.append("")
    return "\n".join(out).strip(), doubtful


def order_chunks(lines: list[Line], unit: float) -> list[list[Line]]:
    """Split lines into chunks, each to be read row by row, in reading order."""
    gutter = _find_gutter(lines, unit)
    if gutter is None:
        return [lines]
    g0, g1 = gutter
    lines = [piece for ln in lines for piece in _split_at_gutter(ln, g0, g1)]
    # Only a line across the whole gutter spans; one that pokes into it belongs to its side, and
    # one that shares a row with a spanning line is part of the same page-wide passage.
    # A line alone in its row inside the gutter (a centred page number) belongs to neither column.
    across = [ln for ln in lines if ln.x0 < g0 and ln.x1 > g1]
    across += [ln for ln in lines if g0 - 1 <= ln.x0 and ln.x1 <= g1 + 1
               and not any(o is not ln and _same_row(ln, o) for o in lines)]
    spans = {id(ln) for ln in lines if any(ln is a or _same_row(ln, a) for a in across)}
    spanning = sorted((ln for ln in lines if id(ln) in spans), key=lambda ln: ln.y0)
    columns = [ln for ln in lines if id(ln) not in spans]
    chunks: list[list[Line]] = []
    top = float("-inf")
    spanning_chunk: list[Line] | None = None  # consecutive spanning lines read together
    for cut in spanning + [None]:
        bottom = (cut.y0 + cut.y1) / 2 if cut is not None else float("inf")
        section = [ln for ln in columns if top <= (ln.y0 + ln.y1) / 2 < bottom]
        if section:
            spanning_chunk = None
            mid = (g0 + g1) / 2
            left = [ln for ln in section if (ln.x0 + ln.x1) / 2 < mid]
            right = [ln for ln in section if (ln.x0 + ln.x1) / 2 >= mid]
            if left and right and not all(any(ln.words >= _PROSE_WORDS for ln in side) for side in (left, right)):
                chunks.append(section)  # no prose on one side: a page-wide table or figure, by rows
            else:
                for side in (left, right):
                    if side:
                        chunks.extend(order_chunks(side, unit))
        if cut is not None:
            if spanning_chunk is None:
                spanning_chunk = []
                chunks.append(spanning_chunk)
            spanning_chunk.append(cut)
            top = bottom  # every line falls in exactly one section
    return chunks


def _same_row(a: Line, b: Line) -> bool:
    return min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5 * min(a.y1 - a.y0, b.y1 - b.y0)


def _split_at_gutter(ln: Line, g0: float, g1: float) -> list[Line]:
    """A line across the gutter with no word in it is two columns' lines joined: split it."""
    # 1 pt of slack: the gutter's edges are whole points, a word's are not.
    if not (ln.x0 < g0 and ln.x1 > g1) or any(w[0] < g1 - 1 and w[2] > g0 + 1 for w in ln.parts):
        return [ln]
    mid = (g0 + g1) / 2
    left = [w for w in ln.parts if w[2] <= mid]
    right = [w for w in ln.parts if w[0] >= mid]
    return [make_line(left), make_line(right)] if left and right else [ln]


def _find_gutter(lines: list[Line], unit: float) -> tuple[float, float] | None:
    """The widest vertical whitespace band that separates prose columns, if any.

    A band may be crossed by a few lines (a short last line of a full-width
    abstract, a centred heading); those become horizontal cuts in _order.
    """
    if len(lines) < 2 * _COL_MIN_LINES:
        return None
    x0, x1 = min(ln.x0 for ln in lines), max(ln.x1 for ln in lines)
    # Runs of words, not lines: two columns' lines that mupdf joined are two runs across a gap.
    # A one-word run (a page number, an equation number) does not fill a gutter, nor does a line
    # centred on the page (a title, authors and addresses: 16 lines across REVTeX's gutter).
    centre = (x0 + x1) / 2
    narrow = [(r[0][0], r[-1][2]) for ln in lines for r in ln.runs(_GUTTER_MIN * unit)
              if r[-1][2] - r[0][0] < 0.5 * (x1 - x0) and len(r) > 1
              and abs((r[0][0] + r[-1][2]) / 2 - centre) > _CENTRED * (x1 - x0)]
    origin, size = int(x0), int(x1 - x0) + 2
    steps = [0] * (size + 1)  # a difference array: each run adds 1 over [ceil(a), floor(b)]
    for a, b in narrow:
        lo, hi = math.ceil(a) - origin, min(size, int(b) - origin + 1)
        if lo < hi:
            steps[lo] += 1
            steps[hi] -= 1
    cover = list(itertools.accumulate(steps[:size]))
    allowed = max(1, len(narrow) // 10)
    best: tuple[float, float] | None = None
    for start, end in _bands(cover, allowed):
        # The band, else its emptiest stretch: beside a last page's short right column (two
        # lines) the whole right half is under `allowed`, and the gutter is where it is 0.
        floor = min(cover[start:end])
        for s0, s1 in [(0, end - start), *_bands(cover[start:end], floor)]:
            g0, g1 = origin + start + s0, origin + start + s1
            if g1 - g0 >= _GUTTER_MIN * unit and (best is None or g1 - g0 > best[1] - best[0]):
                if _is_column_split(lines, g0, g1, x0, x1):
                    best = (g0, g1)
    return best


def _bands(cover: list[int], limit: int) -> list[tuple[int, int]]:
    """The maximal stretches [start, end) of cover at most limit."""
    out, start = [], None
    for i, c in enumerate(cover + [limit + 1]):
        if c <= limit and start is None:
            start = i
        elif c > limit and start is not None:
            out.append((start, i))
            start = None
    return out


def _is_column_split(lines: list[Line], g0: float, g1: float, x0: float, x1: float) -> bool:
    if g0 - x0 < _COL_MIN_SHARE * (x1 - x0) or x1 - g1 < _COL_MIN_SHARE * (x1 - x0):
        return False
    mid = (g0 + g1) / 2
    lines = [piece for ln in lines for piece in _split_at_gutter(ln, g0, g1)]
    crossing = [ln for ln in lines if ln.x0 < g0 and ln.x1 > g1]
    sides = ([ln for ln in lines if ln.x1 <= mid], [ln for ln in lines if ln.x0 >= mid])
    if len(crossing) > len(sides[0]) + len(sides[1]):
        return False
    # Columns of prose: lines of several words. Displayed mathematics comes out as many short
    # pieces (apssamp's page 3: more pieces than lines of text), so count the prose lines, not the
    # average. A last page's short column may hold a line or two; the other must hold more.
    prose = [sum(ln.words >= _PROSE_WORDS for ln in side) for side in sides]
    if max(prose) < _COL_MIN_LINES or min(prose) < 1:
        return False
    if min(prose) < _COL_MIN_LINES:  # a short column is as wide as the other (a letter's date is not)
        short, full = sorted(sides, key=lambda side: sum(ln.words >= _PROSE_WORDS for ln in side))
        if max(ln.x1 - ln.x0 for ln in short) < _SHORT_WIDTH * statistics.median(ln.x1 - ln.x0 for ln in full):
            return False
    return all(n >= _PROSE_SHARE * len(side) for n, side in zip(prose, sides))


def _rows(lines: list[Line]) -> list[list[Line]]:
    """Group lines that share a baseline band into rows, top to bottom, left to right."""
    rows: list[list[Line]] = []
    for ln in sorted(lines, key=lambda ln: ((ln.y0 + ln.y1) / 2, ln.x0)):
        if rows:
            row = rows[-1]
            top, bottom = min(x.y0 for x in row), max(x.y1 for x in row)
            overlap = min(bottom, ln.y1) - max(top, ln.y0)
            if overlap > 0.5 * min(bottom - top, ln.y1 - ln.y0):
                row.append(ln)
                continue
        rows.append([ln])
    for row in rows:
        row.sort(key=lambda ln: ln.x0)
    return rows
