"""Reading one document's pages: render each, take its text (the text layer first, tesseract OCR
where it is missing or unusable), and reject what cannot be read, with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pymupdf

from docsynth.core.errors import DocsynthError
from docsynth.core.records import Page
from docsynth.config.recipe import IngestConfig
from docsynth.ingest.ocr import check_tesseract, ocr_page
from docsynth.ingest.pagecheck import ink_share, text_score
from docsynth.ingest.pdf import BadDocument, BadPage, layer_is_usable, layer_reading, open_pdf, render
from docsynth.ingest.sources import DocRef
from docsynth.ingest.watch import PageWatch

BLANK = "blank page"  # the reject reason
BLANK_LAYER_CHARS = 4  # a blank page may have this much text layer: a page number


def document_pages(ref: DocRef, data: bytes, cfg: IngestConfig,
                   reject: Callable[[DocRef, int | None, str], None], watch: PageWatch):
    """Yield the Page records of one document (of its page range, for a part of a large one);
    bad documents and pages go to reject. What is wrong with the whole document is said by its
    first part only."""
    poisoned = watch.poisoned()
    if (ref.doc_id, None) in poisoned:
        if ref.first:
            reject(ref, None, poisoned[(ref.doc_id, None)])
        return
    watch.begin(ref, None)
    try:
        doc = open_pdf(data)
        if doc.is_repaired:
            doc.load_page(0)  # page-tree repair warnings belong to no page
        pymupdf.TOOLS.mupdf_warnings(reset=True)
    except BadDocument as e:
        if ref.first:
            reject(ref, None, str(e))
        return
    finally:
        watch.end()
    with doc:
        n = doc.page_count
        start, stop = ref.pages or (0, n)
        for i in range(start, min(stop, n)):
            if (ref.doc_id, i) in poisoned:
                reject(ref, i, poisoned[(ref.doc_id, i)])
                continue
            watch.begin(ref, i)
            try:
                page = doc.load_page(i)
                text, source, conf, turned, reader = page_text(page, cfg)
                if turned:  # a scan read upright by OCR: its image is shown upright too
                    page.set_rotation((page.rotation + turned) % 360)
                image, w, h_px, dpi, h = render(page, cfg)
                warned = pymupdf.TOOLS.mupdf_warnings(reset=True)
                if doc.is_repaired and warned:
                    # In a file mupdf had to repair (truncated, broken xref), a page that warns
                    # lost content: its image and text would be partial.
                    raise BadPage(f"damaged page in a repaired file: {warned.splitlines()[0]}")
            except BadPage as e:
                reject(ref, i, str(e))
                continue
            except Exception as e:  # mupdf can raise anything on a damaged page
                reject(ref, i, f"page failed: {type(e).__name__}: {e}")
                continue
            finally:
                watch.end()
            yield Page(ref.doc_id, ref.source, i, n, image, cfg.image_format, w, h_px, round(dpi, 2),
                       text, source, conf, h[0], h[1].tobytes(), ref.meta, reader)


def page_text(page, cfg: IngestConfig) -> tuple[str, str, float | None, int, str | None]:
    """(text, where it came from, OCR confidence, degrees the page was turned to read it, the
    reader that ordered a text layer): the text layer first, OCR where needed; BadPage("blank
    page") for a page with nothing on it (docsynth.ingest.pagecheck), which is never OCRed."""
    ocr = cfg.ocr
    layer, reader = "", None
    if ocr.mode != "always":
        layer, reader = layer_reading(page, cfg.layout)
        if ocr.mode == "never" or layer_is_usable(layer, ocr):
            return layer, ("layer" if layer.strip() else "none"), None, 0, (reader if layer.strip() else None)
    # Blank: next to no ink, and no text layer beyond a page number (small print can be under
    # blank_ink at 50 dpi, but its layer says it is there).
    if ocr.blank_ink and len("".join(layer.split())) <= BLANK_LAYER_CHARS and ink_share(page) <= ocr.blank_ink:
        raise BadPage(BLANK)
    text, conf, turned = ocr_page(page, ocr, cfg.max_pixels)
    if ocr.mode == "auto" and layer.strip() and text_score(layer) >= text_score(text, conf) \
            and layer_is_usable(layer, ocr.model_copy(update={"min_chars": 1})):
        return layer, "layer", None, 0, reader  # short but better than what OCR read (form labels, digits)
    return text, "ocr", round(conf, 2), turned, None


def file_page_texts(path: Path, cfg: IngestConfig) -> list[str]:
    """The text of every page of one file, as ingest would read it (a .txt file is one page)."""
    if path.suffix.lower() in (".txt", ".md"):
        return [path.read_text()]
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DocsynthError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = open_pdf(data)
    except BadDocument as e:
        raise DocsynthError(f"{path}: {e}") from None
    if cfg.ocr.mode != "never":
        check_tesseract(cfg.ocr.languages)
    with doc:
        return [_text_or_blank(page, cfg) for page in doc]


def _text_or_blank(page, cfg: IngestConfig) -> str:
    try:
        return page_text(page, cfg)[0]
    except BadPage as e:
        if str(e) == BLANK:  # a blank page has no text
            return ""
        raise
