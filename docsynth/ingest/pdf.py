"""Opening PDFs, rendering pages to images, and reading the text layer (pymupdf)."""

from __future__ import annotations

import io
import math
import unicodedata

import pymupdf

from docsynth.ingest.layout import lines_from_words, reading_order_text
from docsynth.recipe import IngestConfig, OcrConfig

_MAGIC = [(b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"PK\x03\x04", "a ZIP archive"),
          (b"GIF8", "a GIF image"), (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"),
          (b"\x1f\x8b", "a gzip file"), (b"{", "JSON or text"), (b"<", "HTML or XML")]
# mupdf itself refuses pixmaps past this side length; stay well inside it.
MAX_SIDE = 30_000


class BadDocument(Exception):
    """The file cannot be used at all; the message is the reject reason."""


class BadPage(Exception):
    """One page cannot be used; the message is the reject reason."""


def sniff(data: bytes) -> str | None:
    """None if data looks like a PDF, else what it looks like instead."""
    if not data:
        return "empty file"
    if b"%PDF-" in data[:1024]:
        return None
    head = data[:16].lstrip()
    kind = next((name for magic, name in _MAGIC if head.startswith(magic)), "unknown data")
    return f"not a PDF (no %PDF header; looks like {kind})"


def open_pdf(data: bytes) -> pymupdf.Document:
    """Open PDF bytes; BadDocument says why they cannot be used."""
    problem = sniff(data)
    if problem:
        raise BadDocument(problem)
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception as e:  # mupdf raises FileDataError, RuntimeError, ValueError ...
        raise BadDocument(f"corrupt PDF: {e}") from None
    if doc.needs_pass and not doc.authenticate(""):
        doc.close()
        raise BadDocument("encrypted PDF: a password is needed to open it")
    try:
        n = doc.page_count
    except Exception as e:
        raise BadDocument(f"corrupt PDF: cannot count pages: {e}") from None
    if n == 0:
        repaired = doc.is_repaired
        doc.close()
        raise BadDocument("PDF has no pages" + (" (damaged beyond repair)" if repaired else ""))
    return doc


def zoom_for(rect: pymupdf.Rect, dpi: float, max_pixels: int) -> float:
    """Scale factor from points to pixels: the dpi, lowered so the page fits the pixel cap."""
    if rect.is_empty or rect.width <= 0 or rect.height <= 0:
        raise BadPage(f"page has an empty area ({rect.width:g} x {rect.height:g} pt)")
    zoom = dpi / 72.0
    area = rect.width * rect.height * zoom * zoom
    if area > max_pixels:
        zoom = math.sqrt(max_pixels / (rect.width * rect.height))
        # mupdf rounds pixmap sides up: shrink until the rounded size fits the cap too
        while math.ceil(rect.width * zoom) * math.ceil(rect.height * zoom) > max_pixels:
            zoom *= 0.999
    return min(zoom, MAX_SIDE / max(rect.width, rect.height))


def render(page: pymupdf.Page, cfg: IngestConfig) -> tuple[bytes, int, int, float]:
    """Encoded page image, its width and height, and the dpi actually used."""
    zoom = zoom_for(page.rect, cfg.dpi, cfg.max_pixels)
    try:
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False)
        fmt = cfg.image_format
        if fmt == "jpeg":
            data = pix.tobytes("jpeg", jpg_quality=cfg.image_quality)
        elif fmt == "png":
            data = pix.tobytes("png")
        else:
            data = _webp(pix, cfg.image_quality)
    except BadPage:
        raise
    except Exception as e:
        raise BadPage(f"render failed: {e}") from None
    return data, pix.width, pix.height, zoom * 72.0


def _webp(pix: pymupdf.Pixmap, quality: int) -> bytes:
    from PIL import Image

    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=quality, method=2)
    return buf.getvalue()


def layer_text(page: pymupdf.Page) -> str:
    """The page's own text layer in reading order (columns one after another)."""
    try:
        words = page.get_text("words", flags=pymupdf.TEXT_MEDIABOX_CLIP)
    except Exception as e:
        raise BadPage(f"text extraction failed: {e}") from None
    return reading_order_text(lines_from_words(words))


def layer_is_usable(text: str, cfg: OcrConfig) -> bool:
    """Enough characters, and not mostly garbage from a broken font encoding."""
    chars = [c for c in text if not c.isspace()]
    if len(chars) < max(cfg.min_chars, 1):
        return False
    bad = sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cs", "Cn"))
    return bad / len(chars) <= cfg.max_garbage_ratio
