"""Cheap looks at a page before and after OCR: is it blank, and which text of it is better.

Blank pages: every page without a text layer went to tesseract, blank ones too: 200 blank pages
took 352 s in `auto`. A 50 dpi grey rendering costs about 1 ms and tells ink from paper:
measured (share of pixels darker than 160 inside a 4 % margin, which leaves scanner edges out):
a blank page or a blank noisy scan 0, a page number alone 0.7e-4, a 6 pt "ok" 0.1e-4, one
short 8 pt line 3e-4, a scanned text page 135e-4 and more.

Layer or OCR: a text layer under ocr.min_chars used to be replaced by OCR whatever OCR gave,
and a short but right layer (form labels, digits) lost to worse OCR. Both texts are now scored
by their readable tokens, OCR's weighted by its confidence, and the better one is kept.
"""

from __future__ import annotations

import numpy as np
import pymupdf
import regex

BLANK_DPI = 50
INK_LEVEL = 160  # grey value under which a pixel is ink
MARGIN = 25  # 1/25 of each side left out: scanner edges, punched holes, shadows


def ink_share(page: pymupdf.Page) -> float:
    """The share of the page (margins left out) that is ink, from a 50 dpi grey rendering."""
    z = BLANK_DPI / 72
    pix = page.get_pixmap(matrix=pymupdf.Matrix(z, z), colorspace=pymupdf.csGRAY, alpha=False)
    a = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, :pix.width]
    mh, mw = max(a.shape[0] // MARGIN, 1), max(a.shape[1] // MARGIN, 1)
    inner = a[mh:-mh, mw:-mw]
    return float((inner < INK_LEVEL).mean()) if inner.size else 0.0


_TOKEN = regex.compile(r"\p{L}{2,}|\p{N}+")


def text_score(text: str, confidence: float | None = None) -> float:
    """How much readable text: tokens of two letters or more and numbers, weighted by OCR's mean
    confidence (0-100) where given."""
    n = len(_TOKEN.findall(text))
    return n if confidence is None else n * max(confidence, 0.0) / 100
