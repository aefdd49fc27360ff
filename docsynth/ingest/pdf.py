"""Opening PDFs, rendering pages to images, and reading the text layer (pymupdf)."""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import pymupdf
import regex
import simplejpeg
from PIL import Image

from docsynth.ingest import layoutmodel
from docsynth.ingest.layout import DOUBTFUL_ROWS, lines_from_words, read
from docsynth.hashing.phash import pixels_hash
from docsynth.config.recipe import IngestConfig, OcrConfig

log = logging.getLogger(__name__)

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


def render(page: pymupdf.Page, cfg: IngestConfig) -> tuple[bytes, int, int, float, tuple[int, np.ndarray]]:
    """Encoded page image, its width and height, the dpi actually used, and the perceptual
    hashes of its pixels (docsynth.hashing.phash.pixels_hash)."""
    zoom = zoom_for(page.rect, cfg.dpi, cfg.max_pixels)
    try:
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False)
    except Exception as e:
        raise BadPage(f"render failed: {e}") from None
    pixels = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.stride)[:, : pix.width * 3]
    hashes = pixels_hash(pixels.reshape(pix.height, pix.width, 3))
    del pixels  # release the view before the pixmap can be freed
    return encode(pix, cfg.image_format, cfg.image_quality), pix.width, pix.height, zoom * 72.0, hashes


def encode(pix: pymupdf.Pixmap, fmt: str, quality: int) -> bytes:
    """Encode an RGB pixmap. JPEG goes through libjpeg-turbo (simplejpeg) straight from the
    pixmap's memory: 5.5 ms for an A4 page at 150 dpi, against 7.9 ms through Pillow (which
    must copy RGB first) and 93 ms through mupdf's own encoder (bench/ingest.py)."""
    if fmt == "jpeg":
        pixels = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.stride)
        pixels = pixels[:, : pix.width * 3].reshape(pix.height, pix.width, 3)
        data = simplejpeg.encode_jpeg(pixels, quality=quality, colorspace="RGB", colorsubsampling="420")
        del pixels  # release the view before the pixmap can be freed
        return data
    img = Image.frombuffer("RGB", (pix.width, pix.height), pix.samples_mv, "raw", "RGB", pix.stride, 1)
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", compress_level=1)  # level 1: half the time of 6, ~5% larger
    else:
        img.save(buf, format="WEBP", quality=quality, method=2)
    return buf.getvalue()


def layer_text(page: pymupdf.Page) -> str:
    """The page's own text layer in reading order (columns one after another), by geometry."""
    return layer_reading(page, "geometry")[0]


def layer_reading(page: pymupdf.Page, layout: str) -> tuple[str, str]:
    """The page's text layer in reading order and the reader that ordered it ("geometry" or
    "model"): ingest.layout geometry, model, or auto (the model where the geometry is in doubt
    and the model is installed; docsynth.ingest.layoutmodel)."""
    try:
        words = page.get_text("words", flags=pymupdf.TEXT_MEDIABOX_CLIP)
    except Exception as e:
        raise BadPage(f"text extraction failed: {e}") from None
    lines = lines_from_words(words)
    if layout != "model":
        text, doubtful = read(lines)
        if layout == "geometry" or doubtful < DOUBTFUL_ROWS or not layoutmodel.available():
            return text, "geometry"
    try:
        return layoutmodel.model_text(page, words), "model"
    except Exception as e:  # the model failing on a page costs its order, never the page
        log.warning("page %d: the layout model failed (%s: %s); its geometric reading is kept",
                    page.number, type(e).__name__, e)
        return read(lines)[0], "geometry"


_SPACE = regex.compile(r"\s+")
# replacement character, controls, private use, surrogates, unassigned: a broken font encoding
_GARBAGE = regex.compile(r"[\ufffd\p{Cc}\p{Co}\p{Cs}\p{Cn}]")


def layer_is_usable(text: str, cfg: OcrConfig) -> bool:
    """Enough characters, and not mostly garbage from a broken font encoding."""
    chars = len(_SPACE.sub("", text))
    if chars < max(cfg.min_chars, 1):
        return False
    return len(_GARBAGE.findall(text)) / chars <= cfg.max_garbage_ratio
