"""Reading order for a page's text lines, from their geometry alone.

Content-stream order is unreliable (some producers write two-column text line by
line across the page) and sorting by position interleaves columns. We find prose
column gutters, cut the page into horizontal sections at lines that cross a
gutter (titles, full-width figures), and read each section column by column,
recursing for nested columns. Regions without prose columns (forms, tables) are
read row by row, so a key stays beside its value and a table row stays whole.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

# A gutter must be at least this many median line heights wide ...
_GUTTER_MIN = 0.6
# ... and split the region into columns each at least this share of its width,
_COL_MIN_SHARE = 0.22
# each holding at least this many lines of prose (words per line on average).
_COL_MIN_LINES = 3
_PROSE_WORDS = 4.0
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


def lines_from_words(words: list[tuple]) -> list[Line]:
    """Build lines from pymupdf 'words' tuples, splitting lines at wide gaps."""
    grouped: dict[tuple[int, int], list[tuple]] = {}
    for w in words:
        grouped.setdefault((w[5], w[6]), []).append(w)
    lines: list[Line] = []
    for ws in grouped.values():
        ws.sort(key=lambda w: w[0])
        height = max(w[3] - w[1] for w in ws) or 1.0
        run = [ws[0]]
        for w in ws[1:]:
            if w[0] - run[-1][2] > _SPLIT_GAP * height:
                lines.append(_line(run))
                run = []
            run.append(w)
        lines.append(_line(run))
    return lines


def _line(ws: list[tuple]) -> Line:
    return Line(min(w[0] for w in ws), min(w[1] for w in ws), max(w[2] for w in ws),
                max(w[3] for w in ws), " ".join(w[4] for w in ws), len(ws))


def reading_order_text(lines: list[Line]) -> str:
    """The page text in reading order: rows joined by newlines, paragraphs by blank lines."""
    if not lines:
        return ""
    unit = statistics.median(ln.y1 - ln.y0 for ln in lines) or 1.0
    out: list[str] = []
    for chunk in _order(lines, unit):
        rows = _rows(chunk)
        prev = None
        for row in rows:
            if prev is not None and row[0].y0 - max(ln.y1 for ln in prev) > 0.8 * unit:
                out.append("")
            out.append(" ".join(ln.text for ln in row))
            prev = row
        out.append("")
    return "\n".join(out).strip()


def _order(lines: list[Line], unit: float) -> list[list[Line]]:
    """Split lines into chunks, each to be read row by row, in reading order."""
    gutter = _find_gutter(lines, unit)
    if gutter is None:
        return [lines]
    g0, g1 = gutter
    # Only a line across the whole gutter spans; one that pokes into it belongs to its side.
    spanning = sorted((ln for ln in lines if ln.x0 < g0 and ln.x1 > g1), key=lambda ln: ln.y0)
    columns = [ln for ln in lines if not (ln.x0 < g0 and ln.x1 > g1)]
    chunks: list[list[Line]] = []
    top = float("-inf")
    spanning_chunk: list[Line] | None = None  # consecutive spanning lines read together
    for cut in spanning + [None]:
        bottom = cut.y0 if cut is not None else float("inf")
        section = [ln for ln in columns if top <= (ln.y0 + ln.y1) / 2 < bottom]
        if section:
            spanning_chunk = None
            mid = (g0 + g1) / 2
            left = [ln for ln in section if (ln.x0 + ln.x1) / 2 < mid]
            right = [ln for ln in section if (ln.x0 + ln.x1) / 2 >= mid]
            for side in (left, right):
                if side:
                    chunks.extend(_order(side, unit))
        if cut is not None:
            if spanning_chunk is None:
                spanning_chunk = []
                chunks.append(spanning_chunk)
            spanning_chunk.append(cut)
            top = (cut.y0 + cut.y1) / 2
    return chunks


def _find_gutter(lines: list[Line], unit: float) -> tuple[float, float] | None:
    """The widest vertical whitespace band that separates prose columns, if any.

    A band may be crossed by a few lines (a short last line of a full-width
    abstract, a centred heading); those become horizontal cuts in _order.
    """
    if len(lines) < 2 * _COL_MIN_LINES:
        return None
    x0, x1 = min(ln.x0 for ln in lines), max(ln.x1 for ln in lines)
    narrow = [ln for ln in lines if ln.x1 - ln.x0 < 0.5 * (x1 - x0)]
    origin, size = int(x0), int(x1 - x0) + 2
    cover = [0] * size
    for ln in narrow:
        for i in range(int(ln.x0) - origin, min(size, int(ln.x1) - origin + 1)):
            cover[i] += 1
    allowed = max(1, len(narrow) // 10)
    best: tuple[float, float] | None = None
    start = None
    for i, c in enumerate(cover + [allowed + 1]):
        if c <= allowed and start is None:
            start = i
        elif c > allowed and start is not None:
            g0, g1 = origin + start, origin + i
            if g1 - g0 >= _GUTTER_MIN * unit and (best is None or g1 - g0 > best[1] - best[0]):
                if _is_column_split(lines, g0, g1, x0, x1):
                    best = (g0, g1)
            start = None
    return best


def _is_column_split(lines: list[Line], g0: float, g1: float, x0: float, x1: float) -> bool:
    if g0 - x0 < _COL_MIN_SHARE * (x1 - x0) or x1 - g1 < _COL_MIN_SHARE * (x1 - x0):
        return False
    mid = (g0 + g1) / 2
    crossing = [ln for ln in lines if ln.x0 < g0 and ln.x1 > g1]
    sides = ([ln for ln in lines if ln.x1 <= mid], [ln for ln in lines if ln.x0 >= mid])
    if len(crossing) > len(sides[0]) + len(sides[1]):
        return False
    for side in sides:
        if len(side) < _COL_MIN_LINES or sum(ln.words for ln in side) / len(side) < _PROSE_WORDS:
            return False
    return True


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
