"""Tables in a page's text: Markdown tables (how ingest writes a born-digital page's tables,
docsynth.ingest.tables), and, in text without them (OCR), a header line of words over rows that
end in the same number of numeric cells. Each cell becomes a span keyed "row label / column
header", so a question about a cell names both (issue 30's probe: a table read as one line gave a
question about the Benelux the Nordics' figure)."""

from __future__ import annotations

import regex

_CELL = regex.compile(r"(?:^|(?<=\s))(?:[-+]?\d[\d,.\u00a0]*%?|[-–—]|n/?a)(?=\s|$)", regex.I)


_PIPE = regex.compile(r"(?<!\\)\|")


def table_cells(lines: list[str]) -> dict[int, list[tuple[int, int, str]]]:
    """The cells of a page's table rows, by line: (start, end, "row label / column header")."""
    rows = markdown_cells(lines)
    rows.update({k: v for k, v in text_cells(lines).items() if k not in rows})
    return rows


def markdown_cells(lines: list[str]) -> dict[int, list[tuple[int, int, str]]]:
    """Body cells of Markdown tables (a header row, a rule of dashes, rows); the first column is
    the row label."""
    rows: dict[int, list[tuple[int, int, str]]] = {}
    for i in range(1, len(lines)):
        if not regex.fullmatch(r"\|(?:\s*:?-{3,}:?\s*\|)+", lines[i].strip()) or not lines[i - 1].startswith("|"):
            continue
        headers = [h for _, _, h in _row(lines[i - 1])]
        j = i + 1
        while j < len(lines) and lines[j].startswith("|"):
            cells = _row(lines[j])
            if len(cells) == len(headers) and cells[0][2]:
                rows[j] = [(s, e, f"{cells[0][2]} / {h}") for (s, e, text), h in zip(cells[1:], headers[1:]) if text]
            j += 1
    return rows


def _row(line: str) -> list[tuple[int, int, str]]:
    """A Markdown row's cells: (start, end, text) with the cell's spaces left out."""
    bars = [m.start() for m in _PIPE.finditer(line)]
    out = []
    for a, b in zip(bars, bars[1:]):
        text = line[a + 1:b]
        lead = len(text) - len(text.lstrip())
        out.append((a + 1 + lead, a + 1 + lead + len(text.strip()), text.strip()))
    return out


def text_cells(lines: list[str]) -> dict[int, list[tuple[int, int, str]]]:
    """Table rows of a page read as text: two or more consecutive lines ending in the same
    number (at least 2) of numeric cells, under a header line of words. Each cell is
    (start, end, "row label / column header") in its line."""
    rows: dict[int, list[tuple[int, int, str]]] = {}
    i = 0
    while i < len(lines):
        j, width = i, _cells(lines[i])
        if len(width) < 2:
            i += 1
            continue
        block = [i]
        while j + 1 < len(lines) and 2 <= len(_cells(lines[j + 1])) <= len(width) + 1 and _label(lines[j + 1], _cells(lines[j + 1])):
            j += 1
            block.append(j)
        if len(block) < 2 or i == 0 or _cells(lines[i - 1]):
            i = j + 1
            continue
        widths = [len(_cells(lines[k])) for k in block]
        columns = max(set(widths), key=lambda w: (widths.count(w), w))  # the usual row's
        headers = _headers(lines[i - 1], columns)
        if headers is None:
            i = j + 1
            continue
        for k in block:
            cells = _cells(lines[k])
            if len(cells) > columns:  # its first numbers belong to its label ("pack of 10")
                cells = cells[len(cells) - columns:]
            label = _label(lines[k], cells)
            if not label:
                continue
            rows[k] = [(s, e, f"{label} / {h}") for (s, e), h in zip(cells, headers)]
        i = j + 1
    return rows


def _cells(line: str) -> list[tuple[int, int]]:
    """The numeric cells at the end of a line (its trailing run of numbers)."""
    found = list(_CELL.finditer(line))
    run: list[tuple[int, int]] = []
    end = len(line.rstrip())
    for m in reversed(found):
        if line[m.end():end].strip():
            break
        run.insert(0, (m.start(), m.end()))
        end = m.start()
    return run


def _label(line: str, cells: list[tuple[int, int]]) -> str:
    """A row's label: the words before its cells (at least one letter)."""
    label = line[:cells[0][0]].strip() if cells else ""
    return label if regex.search(r"\p{L}", label) else ""


def _headers(line: str, columns: int) -> list[str] | None:
    """The column headers of a header line, for `columns` numeric columns: its last words, one
    per column, or, where the headers are several words each ("Sales staff Support staff
    Offices"), the words grouped at capitals. None when they cannot be matched."""
    words = line.split()
    if len(words) < columns + 1:
        return None
    if len(words) == columns + 1:
        return words[1:]
    groups: list[list[str]] = []
    for w in words[1:]:
        if groups and not (w[:1].isupper() or w[:1].isdigit()) or (groups and w.startswith("(")):
            groups[-1].append(w)
        else:
            groups.append([w])
    if len(groups) == columns:
        return [" ".join(g) for g in groups]
    if len(groups) == columns + 1:  # the row label's header was two words ("Unit price" style at the front)
        return [" ".join(g) for g in groups[1:]]
    return None
