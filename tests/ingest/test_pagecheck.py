"""Ingest on real pages (issue 17, item 5): blank pages are found cheaply and rejected, never
OCRed; upside-down and turned scans are read upright (tesseract OSD) and shown upright; a short
but right text layer is kept over worse OCR, and a scan's stray layer loses to OCR. Real pymupdf,
real tesseract."""

from __future__ import annotations

import io
import json
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from docsynth.config.recipe import IngestConfig, OcrConfig, Recipe
from docsynth.core.text import normalise
from docsynth.executors.local import run_ingest
from docsynth.ingest.pagecheck import ink_share
from docsynth.ingest.pages import page_text
from docsynth.ingest.view import iter_pages

SAMPLES = Path(__file__).parents[2] / "sample_pdfs"


def _scan_page(doc: pymupdf.Document, img: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=70)
    page = doc.new_page(width=595, height=842)
    page.insert_image(page.rect, stream=buf.getvalue())


def _blank_doc(path: Path) -> Path:
    """Blank pages of four kinds around one page of text."""
    rng = np.random.default_rng(0)
    doc = pymupdf.open()
    doc.new_page()  # white
    doc.new_page().insert_text((290, 800), "7", fontsize=10)  # a page number alone
    noisy = (245 + rng.normal(0, 6, (1100, 850))).clip(0, 255).astype(np.uint8)
    noisy[rng.random(noisy.shape) < 0.0003] = 30
    _scan_page(doc, noisy)  # a scan of white paper
    edged = noisy.copy()
    edged[:, :30] = 40
    _scan_page(doc, edged)  # ... with the scanner's dark edge
    doc.new_page().insert_text((72, 100), "Approved. J. Smith", fontsize=8)  # little, but not blank
    doc.save(path)
    return path


def test_blank_pages_are_rejected_as_blank_and_never_ocred(tmp_path):
    pdf = _blank_doc(tmp_path / "blanks.pdf")
    doc = pymupdf.open(pdf)
    shares = [ink_share(p) for p in doc]
    assert max(shares[:4]) <= OcrConfig().blank_ink < shares[4]
    r = Recipe.model_validate({"inputs": {"paths": [str(pdf)]}, "ingest": {"workers": 1}})
    s = run_ingest(r, Path("/"), tmp_path / "out")
    assert s.pages == 1 and s.reject_reasons == {"blank page": 4}
    rejects = [json.loads(x) for x in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert sorted(x["page"] for x in rejects) == [0, 1, 2, 3]
    # The text page was OCRed (its layer is under ocr.min_chars), the blank ones were not: with
    # tesseract unable to run at all, the blank ones are still rejected as blank, not failed.
    off = IngestConfig(ocr=OcrConfig(timeout_s=1e-6))
    for page in list(doc)[:4]:
        with pytest.raises(Exception, match="blank page"):
            page_text(page, off)


def _upside_down_scan(path: Path, angle: int) -> Path:
    """The scanned report's first page as a scan whose paper lay turned by angle on the glass."""
    src = pymupdf.open(SAMPLES / "scanned_report.pdf")[0]
    pix = src.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples).rotate(angle, expand=True)
    doc = pymupdf.open()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    w, h = (595, 842) if angle % 180 == 0 else (842, 595)
    page = doc.new_page(width=w, height=h)
    page.insert_image(page.rect, stream=buf.getvalue())
    doc.save(path)
    return path


@pytest.mark.parametrize("angle", [180, 90])
def test_turned_scans_are_read_upright_and_shown_upright(tmp_path, angle):
    upright_text = page_text(pymupdf.open(SAMPLES / "scanned_report.pdf")[0], IngestConfig())[0]
    pdf = _upside_down_scan(tmp_path / "turned.pdf", angle)
    r = Recipe.model_validate({"inputs": {"paths": [str(pdf)]}, "ingest": {"workers": 1}})
    run_ingest(r, Path("/"), tmp_path / "out")
    [row] = list(iter_pages(tmp_path / "out", ["text", "text_source", "ocr_confidence", "image", "width", "height"]))
    assert row["text_source"] == "ocr" and row["ocr_confidence"] >= 85, row["ocr_confidence"]
    assert SequenceMatcher(None, normalise(row["text"]), normalise(upright_text)).ratio() >= 0.95
    assert row["height"] > row["width"]  # the page image is upright (portrait), not as scanned
    img = np.asarray(Image.open(io.BytesIO(row["image"])).convert("L"))
    top, bottom = img[: img.shape[0] // 4], img[-img.shape[0] // 4:]
    assert (top < 128).mean() > (bottom < 128).mean()  # the title and first lines are at the top


def test_a_short_right_layer_beats_worse_ocr_and_a_stray_layer_loses_to_ocr(tmp_path):
    form = pymupdf.open()
    page = form.new_page()
    page.insert_text((72, 80), "ID 7731-B", fontsize=5)
    page.insert_text((400, 80), "EUR 4,711.50", fontsize=5)  # 17 characters: under ocr.min_chars
    text, source, _, _, reader = page_text(page, IngestConfig())
    assert source == "layer" and reader == "geometry" and "7731-B" in text and "4,711.50" in text
    scan = pymupdf.open(SAMPLES / "scanned_report.pdf")
    scan[0].insert_text((20, 830), "Scan 0042", fontsize=6)  # a scanner's stamp in the layer
    text, source, conf, _, _ = page_text(scan[0], IngestConfig())
    assert source == "ocr" and "Riverside Water Authority" in text and conf > 80
