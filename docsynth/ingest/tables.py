"""Tables on a born-digital page, from the geometry of its rows: a header row over two or more
rows with the same number of cells, each cell under the one above it, and at least one column of
numbers. Written as a Markdown table, so the model reads "row / column" and not a run of cells
("North basin 12.1 340 clay South basin ..."), and the answer-first candidates key each cell by
its row and column (docsynth.core.spans.tables).

A form's key-value rows line up too; they are left as rows: no column of numbers under a header.
pymupdf's own `find_tables` was measured and not used here: 0.10 s a page on the journal corpus
(25 times the text layer's 0.004 s), and it finds only ruled tables (booktabs and most report
tables draw no vertical rules).
"""

from __future__ import annotations

from typing import NamedTuple

import regex

_NUMBER = regex.compile(r"^[-+−(]?[$€£¥]?\d[\d,.\u00a0 ]*%?\)?$|^[-–—]$|^n/?a$", regex.I)
_MIN_BODY = 2  # rows under the header
_NUMERIC_SHARE = 0.75  # of a column's body cells, for a column of numbers


class Cell(NamedTuple):
    x0: float
    x1: float
    text: str


def row_cells(row: list, gap: float) -> list[Cell]:
    """A row's cells: the words of its lines (sorted left to right, each with pymupdf word
    tuples in `parts`), cut where two are more than `gap` apart."""
    cells: list[list[tuple]] = []
    for ln in row:
        for w in ln.parts:
            if not cells or w[0] - cells[-1][-1][2] > gap:
                cells.append([])
            cells[-1].append(w)
    return [Cell(c[0][0], c[-1][2], " ".join(w[4] for w in c)) for c in cells]


def find_tables(rows: list[list[Cell]]) -> list[tuple[int, int, list[list[str]]]]:
    """The tables among rows of cells (top to bottom): (start, end, grid) for rows [start, end),
    the grid's first row the header. A row with fewer cells (a total row without the growth
    column) joins a table when each of its cells sits under a column; its gaps are empty cells."""
    out: list[tuple[int, int, list[list[str]]]] = []
    i = 0
    while i < len(rows):
        j = i + 1
        while j < len(rows) and _aligned(rows[j - 1], rows[j]):
            j += 1
        if j - i >= 1 + _MIN_BODY and _has_number_column(rows[i:j]):
            grid = [[c.text for c in row] for row in rows[i:j]]
            columns = [(min(row[k].x0 for row in rows[i:j]), max(row[k].x1 for row in rows[i:j]))
                       for k in range(len(rows[i]))]
            while j < len(rows) and (placed := _place(columns, rows[j])) is not None:
                grid.append(placed)
                j += 1
            out.append((i, j, grid))
            i = j
        else:
            i += 1
    return out


def _aligned(a: list[Cell], b: list[Cell]) -> bool:
    """Two rows with the same number (2 or more) of cells, each overlapping the one above."""
    return len(a) == len(b) >= 2 and all(x.x0 <= y.x1 and y.x0 <= x.x1 for x, y in zip(a, b))


def _place(columns: list[tuple[float, float]], row: list[Cell]) -> list[str] | None:
    """A short row's cells in the table's columns, or None if one fits no column, two fit one, or
    it has no row label (an invoice's "Subtotal: 751.10" under the price columns is a key and
    its value, not a row)."""
    if not 2 <= len(row) <= len(columns):
        return None
    placed = [""] * len(columns)
    last = -1
    for cell in row:
        k = next((k for k, (x0, x1) in enumerate(columns) if cell.x0 <= x1 and x0 <= cell.x1), None)
        if k is None or k <= last:
            return None
        placed[k], last = cell.text, k
    return placed if placed[0] else None


def _has_number_column(rows: list[list[Cell]]) -> bool:
    header, body = rows[0], rows[1:]
    for j in range(1, len(header)):
        numbers = sum(bool(_NUMBER.match(row[j].text.strip())) for row in body)
        if numbers >= _NUMERIC_SHARE * len(body) and not _NUMBER.match(header[j].text.strip()):
            return True
    return False


def markdown(grid: list[list[str]]) -> list[str]:
    """A table as Markdown: the header, its rule, then the body rows."""
    def line(row: list[str]) -> str:
        return "| " + " | ".join(text.replace("|", "\\|") for text in row) + " |"
    return [line(grid[0]), "| " + " | ".join("---" for _ in grid[0]) + " |", *(line(r) for r in grid[1:])]
