"""Text from the real sample PDFs: reading order of the text layer, and tesseract OCR quality."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pymupdf
import pytest

from docsynth.ingest.pdf import layer_is_usable, layer_text
from docsynth.executors.local import run_ingest
from docsynth.ingest.pages import page_text
from docsynth.ingest.view import iter_pages
from docsynth.config.recipe import IngestConfig, OcrConfig
from tests.conftest import recipe


def _flat(s: str) -> str:
    return " ".join(s.split())


def test_two_column_article_comes_out_column_by_column(samples):
    expected = json.loads((samples / "two_column_article.columns.json").read_text())["pages"]
    doc = pymupdf.open(samples / "two_column_article.pdf")
    for page, cols in zip(doc, expected):
        text = _flat(layer_text(page))
        left, right = _flat(" ".join(cols["left"])), _flat(" ".join(cols["right"]))
        assert left in text, "left column is not contiguous"
        assert right in text, "right column is not contiguous"
        assert text.index(left) < text.index(right)


def test_content_stream_order_alone_would_interleave_the_columns(samples):
    """The sample is hard on purpose: pymupdf's own sorted text mixes the two columns."""
    cols = json.loads((samples / "two_column_article.columns.json").read_text())["pages"][0]
    naive = _flat(pymupdf.open(samples / "two_column_article.pdf")[0].get_text(sort=True))
    assert _flat(" ".join(cols["left"])) not in naive


def test_title_and_abstract_precede_the_columns(samples):
    text = layer_text(pymupdf.open(samples / "two_column_article.pdf")[0])
    lines = text.splitlines()
    assert lines[0] == "Synthetic Question Answering Pairs for Document Understanding"
    assert text.index("Abstract.") < text.index("Document understanding models are trained")


@pytest.mark.parametrize("row", [
    "Invoice number: INV-2024-00871",
    "Due date: 13 November 2024",
    "| Black toner cartridge TN-2420 | 4 | 64.90 | 259.60 |",
    "Total due: 901.32",
])
def test_invoice_keys_stay_beside_their_values(samples, row):
    assert row in layer_text(pymupdf.open(samples / "invoice.pdf")[0])


def test_tables_come_out_as_markdown_rows_under_their_header(samples):
    text = layer_text(pymupdf.open(samples / "table_report.pdf")[0])
    lines = text.splitlines()
    header = lines.index("| Region | Q1 | Q2 | Q3 | Q4 | Total | Growth |")
    assert lines[header + 1] == "| --- | --- | --- | --- | --- | --- | --- |"
    assert "| Central Europe | 1,530 | 1,488 | 1,602 | 1,755 | 6,375 | 14.7% |" in lines[header + 2:header + 10]
    assert "All figures in thousands of euros." in text  # the prose around it stays prose
    assert not any(ln.startswith("|") and "All figures" in ln for ln in lines)


def test_a_journal_tables_cells_sit_under_their_headers_and_a_form_stays_rows(samples):
    with pymupdf.open(Path(__file__).parent / "journals" / "acmart.pdf") as doc:
        text = layer_text(doc[1])
    assert "| Station | Level (m) | Discharge | Soil |" in text
    assert sum(ln.startswith("| ") and ln.endswith(" |") for ln in text.splitlines()) == 6  # header, rule, 4 rows
    invoice = layer_text(pymupdf.open(samples / "invoice.pdf")[0])
    assert "Invoice number: INV-2024-00871" in invoice and "| Invoice number" not in invoice


def test_french_and_german_text_keep_their_accents(samples):
    fr = layer_text(pymupdf.open(samples / "lettre_fr.pdf")[0])
    de = layer_text(pymupdf.open(samples / "bericht_de.pdf")[0])
    assert "d'un montant de 486,40 euros" in _flat(fr) and "désagrément" in fr
    assert "Baden-Württemberg" in _flat(de)


@pytest.mark.parametrize("text, usable", [
    ("", False),
    ("   \n ", False),
    ("Page 3", False),  # a page number alone is no text layer
    ("The Riverside Water Authority supplies drinking water to 412,000 residents.", True),
    ("\ufffd" * 40 + " ok", False),  # a broken font encoding
    ("\ue001\ue002\ue003" * 20, False),  # private-use glyph codes
])
def test_text_layer_usability(text, usable):
    assert layer_is_usable(text, OcrConfig()) is usable


def _words(s: str) -> list[str]:
    return re.findall(r"\w+(?:[.,'-]\w+)*", s.lower())


def _cer(hyp: str, ref: str) -> float:
    """Character error rate: Levenshtein distance over the reference length."""
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i]
        for j, hc in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc)))
        prev = cur
    return prev[-1] / max(len(ref), 1)


@pytest.fixture(scope="module")
def scanned_pages(tmp_path_factory) -> list[dict]:
    samples = Path(__file__).parents[2] / "sample_pdfs"
    out = tmp_path_factory.mktemp("scan")
    run_ingest(recipe([samples / "scanned_report.pdf"]), Path("/"), out)
    return list(iter_pages(out, ["page", "text", "text_source", "ocr_confidence"]))


def test_scanned_pages_are_ocred_in_auto_mode_with_confidence(scanned_pages):
    assert [p["page"] for p in scanned_pages] == [0, 1]
    for p in scanned_pages:
        assert p["text_source"] == "ocr"
        assert 80 <= p["ocr_confidence"] <= 100


def test_ocr_word_recall_and_cer_against_ground_truth(scanned_pages, samples):
    truth = (samples / "scanned_report.txt").read_text().split("\f")
    for p, ref in zip(scanned_pages, truth):
        hyp_words, ref_words = Counter(_words(p["text"])), Counter(_words(ref))
        recall = sum((hyp_words & ref_words).values()) / sum(ref_words.values())
        cer = _cer(_flat(p["text"]), _flat(ref))
        assert recall >= 0.95, f"page {p['page']}: word recall {recall:.3f}"
        assert cer <= 0.02, f"page {p['page']}: CER {cer:.4f}"


def test_born_digital_pages_use_the_layer_and_ocr_always_forces_tesseract(samples):
    page = pymupdf.open(samples / "invoice.pdf")[0]
    text, source, conf, turned, reader = page_text(page, IngestConfig())
    assert source == "layer" and conf is None and "INV-2024-00871" in text and turned == 0 and reader == "geometry"
    text, source, conf, turned, reader = page_text(page, IngestConfig(ocr=OcrConfig(mode="always")))
    assert source == "ocr" and conf > 50 and "INV-2024-00871" in text and turned == 0 and reader is None


def test_ocr_never_leaves_scanned_pages_without_text(samples):
    page = pymupdf.open(samples / "scanned_report.pdf")[0]
    assert page_text(page, IngestConfig(ocr=OcrConfig(mode="never"))) == ("", "none", None, 0, None)


def test_scans_are_ocred_at_their_own_resolution_not_upsampled(samples):
    from docsynth.ingest.ocr import ocr_dpi, scan_dpi

    scan = pymupdf.open(samples / "scanned_report.pdf")[0]
    assert scan_dpi(scan) == pytest.approx(200, abs=1)  # made at 200 dpi by make_samples.py
    assert ocr_dpi(scan, OcrConfig(dpi=300)) == pytest.approx(200, abs=1)
    assert ocr_dpi(scan, OcrConfig(dpi=150)) == 150  # the recipe's dpi stays an upper bound
    born = pymupdf.open(samples / "two_column_article.pdf")[0]  # vector text and a drawn figure
    assert scan_dpi(born) is None and ocr_dpi(born, OcrConfig(dpi=300)) == 300
