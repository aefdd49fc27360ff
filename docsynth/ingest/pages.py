"""Reading one document's pages: render each, take its text (the text layer first, tesseract OCR
where it is missing or unusable), and reject what cannot be read, with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pymupdf

from docsynth.core.errors import DocsynthError
from docsynth.core.records import Page
from docsynth.core.recipe import IngestConfig
from docsynth.ingest.ocr import check_tesseract, ocr_page
from docsynth.ingest.pdf import BadDocument, BadPage, layer_is_usable, layer_text, open_pdf, render
from docsynth.ingest.sources import DocRef
from docsynth.ingest.watch import PageWatch


def document_pages(ref: DocRef, data: bytes, cfg: IngestConfig,
                   reject: Callable[[DocRef, int | None, str], None], watch: PageWatch):
    """Yield the Page records of one document; bad documents and pages go to reject."""
    poisoned = watch.poisoned()
    if (ref.doc_id, None) in poisoned:
        reject(ref, None, poisoned[(ref.doc_id, None)])
        return
    watch.begin(ref, None)
    try:
        doc = open_pdf(data)
        if doc.is_repaired:
            doc.load_page(0)  # page-tree repair warnings belong to no page
        pymupdf.TOOLS.mupdf_warnings(reset=True)
    except BadDocument as e:
        reject(ref, None, str(e))
        return
    finally:
        watch.end()
    with doc:
        n = doc.page_count
        for i in range(n):
            if (ref.doc_id, i) in poisoned:
                reject(ref, i, poisoned[(ref.doc_id, i)])
                continue
            watch.begin(ref, i)
            try:
                page = doc.load_page(i)
                image, w, h, dpi = render(page, cfg)
                text, source, conf = page_text(page, cfg)
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
            yield Page(ref.doc_id, ref.source, i, n, image, cfg.image_format, w, h, round(dpi, 2),
                       text, source, conf)


def page_text(page, cfg: IngestConfig) -> tuple[str, str, float | None]:
    """(text, where it came from, OCR confidence): the text layer first, OCR where needed."""
    ocr = cfg.ocr
    if ocr.mode != "always":
        text = layer_text(page)
        if ocr.mode == "never" or layer_is_usable(text, ocr):
            return text, ("layer" if text.strip() else "none"), None
    text, conf = ocr_page(page, ocr, cfg.max_pixels)
    return text, "ocr", round(conf, 2)


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
        return [page_text(page, cfg)[0] for page in doc]
