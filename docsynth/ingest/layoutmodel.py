"""The layout model's reading of a page (ingest.layout: model, or auto where the geometry is in
doubt): pymupdf-layout's boxes (paragraphs, headings, captions, tables, footnotes), ordered by
the geometric reader as if each box were one line, and each box's own lines read by it in turn.

pymupdf-layout (extra `layout`) is a small graph network run with onnxruntime: 0.4 to 1.0 s a page
on a 2-core machine against 0.004 s for the text layer's words, so auto gives it only the pages
whose geometric reading is in doubt. PyMuPDF 2.0 bundles it and loads the model whenever pymupdf
is imported (1.5 s and 90 MB in every ingest worker), and 2.1 cannot be installed from PyPI (it
requires pymupdf-layout 2.1, which is not published): docsynth stays on PyMuPDF 1.28 with the
model as a separate, optional package.
"""

from __future__ import annotations

import importlib.util
import statistics
from functools import cache

from docsynth.core.errors import RecipeError
from docsynth.ingest.layout import lines_from_words, make_line, order_chunks, read

INSTALL = "pip install 'docsynth[layout]'"


@cache
def available() -> bool:
    return importlib.util.find_spec("pymupdf.layout") is not None


def require() -> None:
    """RecipeError unless the layout model can run (ingest.layout: model)."""
    if not available():
        raise RecipeError(f"ingest.layout: model needs the layout model, which is not installed: {INSTALL}")


def model_text(page, words: list[tuple]) -> str:
    """The page's text in the model's boxes, ordered as the page is read. Words, not lines, go
    to the boxes: a line mupdf joined across two columns is split between their boxes."""
    import pymupdf.layout  # noqa: F401  (registers the model with pymupdf; loaded once a process)

    page.get_layout()
    boxes = [b for b in (page.layout_information or []) if len(b) >= 4]
    inside: list[list[tuple]] = [[] for _ in boxes]
    loose: list[tuple] = []
    for w in words:
        cx, cy = (w[0] + w[2]) / 2, (w[1] + w[3]) / 2
        k = next((k for k, b in enumerate(boxes) if b[0] <= cx <= b[2] and b[1] <= cy <= b[3]), None)
        (loose if k is None else inside[k]).append(w)
    groups = [lines_from_words(ws) for ws in inside if ws] + [[ln] for ln in lines_from_words(loose)]
    if not groups:
        return ""
    # Each box stands for one line of its words, so the column logic orders boxes as it orders
    # lines. It may split a stand-in at the gutter: a word finds its box again by its identity.
    owner = {id(w): k for k, g in enumerate(groups) for ln in g for w in ln.parts}
    stand_ins = [make_line(sorted((w for ln in g for w in ln.parts), key=lambda w: w[0])) for g in groups]
    unit = statistics.median(ln.y1 - ln.y0 for g in groups for ln in g) or 1.0
    parts: list[str] = []
    done: set[int] = set()
    for chunk in order_chunks(stand_ins, unit):  # the geometric reader's ordering
        for item in sorted(chunk, key=lambda it: (it.y0, it.x0)):
            k = owner[id(item.parts[0])]
            if k not in done:
                done.add(k)
                text = read(groups[k])[0]
                if text:
                    parts.append(text)
    return "\n\n".join(parts)
