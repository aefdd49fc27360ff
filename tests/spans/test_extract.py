"""Candidate answers read off real pages (issue 30): the sample PDFs rendered and read by pymupdf
as ingest reads them, then docsynth.core.spans on their text: tables, key-value forms, prose."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsynth.config.recipe import IngestConfig
from docsynth.core.spans import document_spans, extract_spans, pick_spans
from docsynth.ingest.pages import file_page_texts

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pdfs"
LAYER = IngestConfig.model_validate({"ocr": {"mode": "never"}})


def spans_of(name: str, page: int = 0):
    text = file_page_texts(SAMPLES / name, LAYER)[page]
    spans = extract_spans(text)
    for s in spans:  # every span is exactly the page's text at its offsets
        assert text[s.start:s.end] == s.text
    return text, spans


def test_a_table_gives_cells_keyed_by_row_and_column():
    _, spans = spans_of("table_report.pdf")
    cells = {s.key: s.text for s in spans if s.kind == "cell"}
    assert cells["Nordics / Q2"] == "1,311" and cells["Benelux / Q2"] == "1,022"
    assert cells["Baltics / Growth"] == "29.4%" and cells["Central Europe / Total"] == "6,375"
    assert cells["All regions / Total"] == "34,177"  # a total row without the growth column, aligned left
    # headers of several words each, grouped at capitals
    assert cells["Central Europe / Support staff"] == "16" and cells["Iberia / Offices"] == "2"
    # no loose number of a table row: a table's figures are cells, with their headers
    assert not [s for s in spans if s.kind == "number" and s.text in cells.values()]


def test_an_invoice_gives_keyed_values_not_the_other_column():
    _, spans = spans_of("invoice.pdf")
    keyed = {s.key: (s.text, s.kind) for s in spans if s.key and s.kind != "cell"}
    # "Invoice date: 14 October 2024 Harbour Dental Clinic": the other column is not the value
    assert keyed["Invoice date"] == ("14 October 2024", "date")
    assert keyed["Due date"] == ("13 November 2024", "date")
    assert keyed["Invoice number"] == ("INV-2024-00871", "code")
    assert keyed["Purchase order"] == ("PO-55190", "code")
    assert keyed["Customer ID"] == ("C-10442", "code")
    assert keyed["Total due"][0] == "901.32"
    cells = {s.key: s.text for s in spans if s.kind == "cell"}
    assert cells["Black toner cartridge TN-2420 / Unit price"] == "64.90"
    # "pack of 10 6 18.75 112.50": the 10 belongs to the item, the 6 is its quantity
    assert cells["Lever arch files, blue, pack of 10 / Qty"] == "6"
    texts = {s.text for s in spans}
    assert "0117 496 0321" in texts  # a telephone number is one code, not three numbers
    assert not {"5QT", "22", "1EA"} & texts  # house numbers and postcodes are no answers
    assert not [s for s in spans if s.text == "4" and s.kind != "cell"]  # "4 Mill Lane"; the toner's quantity is a cell


def test_prose_gives_figures_with_unit_and_scale_and_no_bare_years_or_days():
    _, spans = spans_of("annual_report.pdf", 1)
    by_text = {s.text: s.kind for s in spans}
    assert by_text["81.2 million pounds"] == "amount" and by_text["99.91 percent"] == "percent"
    assert by_text["18,604"] == "number" and by_text["21 milligrams per litre"] == "quantity"
    assert "2022" not in by_text and "2025" not in by_text  # bare years
    _, spans = spans_of("annual_report.pdf", 0)
    by_text = {s.text: s.kind for s in spans}
    assert by_text["18 March 2024"] == "date" and by_text["171 million litres"] == "quantity"
    assert "11" not in by_text and "2" not in by_text  # "on 11 July", "on 2 February": days without a year
    assert "1" not in by_text  # the heading "1. Introduction" and the page number


@pytest.mark.parametrize("name,expect", [
    ("lettre_fr.pdf", {"48,64 euros": "amount", "30 septembre 2024": "date", "2024-3318": "code"}),
    ("bericht_de.pdf", {"2,4 Millionen Euro": "amount", "23 Prozent": "percent", "612.000": "number"}),
])
def test_french_and_german_figures(name, expect):
    _, spans = spans_of(name)
    by_text = {s.text: s.kind for s in spans}
    assert {k: by_text.get(k) for k in expect} == expect
    assert "69002" not in by_text  # a postcode before its town


def test_picking_is_deterministic_spread_and_skips_ambiguous_spans():
    text, _ = spans_of("lettre_fr.pdf")
    found = document_spans(text, [0])
    rank = lambda s: (s.start * 7919) % 101  # noqa: E731 - any deterministic key
    order = ("amount", "date", "code", "percent")
    a = pick_spans(found, 4, order, rank)
    assert a == pick_spans(found, 4, order, rank)
    assert len(a) == 4 and len({s.kind for _, s in a}) == 4  # one of each kind first
    assert "2024-3318" not in {s.text for _, s in a}  # on the page twice: its place is ambiguous
    assert not [s for _, s in pick_spans(found, 10, ("amount",), rank) if s.kind != "amount"]


def test_a_window_of_pages_gives_each_span_its_page():
    texts = file_page_texts(SAMPLES / "annual_report.pdf", LAYER)[:2]
    from docsynth.llm.prompts import format_document

    text = format_document(texts)
    found = document_spans(text, [4, 5])
    pages = {s.text: p for p, s in found}
    assert pages["412,000"] == 4 and pages["81.2 million pounds"] == 5
    assert all(text[s.start:s.end] == s.text for _, s in found)


def test_a_markdown_table_from_ingest_gives_every_body_cell_keyed_by_row_and_column():
    journal = Path(__file__).resolve().parents[1] / "ingest" / "journals" / "acmart.pdf"
    text = file_page_texts(journal, LAYER)[1]
    spans = extract_spans(text)
    cells = {s.key: s.text for s in spans if s.kind == "cell"}
    assert cells["North basin / Level (m)"] == "34.1" and cells["West gauge / Soil"] == "gravel"
    assert not any(key.startswith(("Station", "---")) for key in cells)  # header and rule are no rows
    for s in spans:
        assert text[s.start:s.end] == s.text
