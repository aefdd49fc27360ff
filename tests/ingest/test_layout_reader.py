"""ingest.layout: the geometric reader, the layout model (pymupdf-layout, the real ONNX model the
package ships), and auto, which gives the model only the pages whose geometry is in doubt."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pyarrow.parquet as pq
import pytest

from docsynth.core.errors import RecipeError
from docsynth.ingest import layoutmodel
from docsynth.ingest.layout import DOUBTFUL_ROWS, lines_from_words, read
from docsynth.ingest.pdf import layer_reading
from docsynth.executors.local import run_ingest
from tests.conftest import recipe
from tests.ingest.columncheck import problems

JOURNALS = Path(__file__).parent / "journals"
needs_model = pytest.mark.skipif(not layoutmodel.available(), reason="extra `layout` not installed")


def _columns_the_geometry_misses() -> bytes:
    """Two columns of prose around a pull quote set off-centre across the gutter (its lines beside
    shortened column lines): no straight gutter, so the geometry reads the page row by row."""
    doc = pymupdf.open()
    page = doc.new_page()
    for i in range(20):
        y = 80 + 14 * i
        quote = 6 <= i < 14
        page.insert_text((50, y), f"Left {i} words of the left column" if quote else
                         f"Left column sentence {i} has words running on", fontsize=10)
        page.insert_text((395 if quote else 310, y), f"Right {i} words on the right" if quote else
                         f"Right column sentence {i} has words too", fontsize=10)
        if quote:
            page.insert_text((215, y), f"Quote {i} sits in the middle", fontsize=10)
    return doc.tobytes()


def test_a_page_whose_columns_the_geometry_misses_is_in_doubt():
    with pymupdf.open(stream=_columns_the_geometry_misses(), filetype="pdf") as doc:
        text, doubtful = read(lines_from_words(doc[0].get_text("words")))
    assert doubtful >= DOUBTFUL_ROWS and "Left 6 words of the left column Quote 6 sits" in text  # rows across
    for paper in JOURNALS.glob("*.pdf"):  # and no journal page is
        with pymupdf.open(paper) as doc:
            assert all(read(lines_from_words(p.get_text("words")))[1] < DOUBTFUL_ROWS for p in doc), paper.name


@needs_model
def test_auto_gives_the_model_the_page_in_doubt_and_the_model_reads_its_columns_in_order():
    with pymupdf.open(stream=_columns_the_geometry_misses(), filetype="pdf") as doc:
        text, reader = layer_reading(doc[0], "auto")
    assert reader == "model"
    assert text.index("Left column sentence 19") < text.index("Right column sentence 0")
    with pymupdf.open(JOURNALS / "acmart.pdf") as doc:
        assert layer_reading(doc[0], "auto")[1] == "geometry"


@needs_model
def test_the_model_reads_journal_pages_in_column_order():
    found, pages = 0, 0
    for name in ("revtex41.pdf", "ieeetran.pdf"):
        with pymupdf.open(JOURNALS / name) as doc:
            for page in doc:
                text, reader = layer_reading(page, "model")
                assert reader == "model"
                found += len(problems(page, text))
                pages += 1
    assert found <= max(1, pages // 10), found  # the geometry has none here; the model is the fallback


def test_layout_model_without_the_package_is_an_error_naming_the_extra(monkeypatch):
    monkeypatch.setattr(layoutmodel, "available", lambda: False)
    with pytest.raises(RecipeError, match=r"docsynth\[layout\]"):
        layoutmodel.require()
    with pymupdf.open(stream=_columns_the_geometry_misses(), filetype="pdf") as doc:
        assert layer_reading(doc[0], "auto")[1] == "geometry"  # auto goes on without it


@needs_model
@pytest.mark.parametrize("layout", ["geometry", "model"])
def test_ingest_records_the_reader_per_page_and_counts_it(tmp_path, layout):
    src = tmp_path / "in"
    src.mkdir()
    (src / "doubt.pdf").write_bytes(_columns_the_geometry_misses())
    (src / "acmart.pdf").write_bytes((JOURNALS / "acmart.pdf").read_bytes())
    s = run_ingest(recipe([src], layout=layout, ocr={"mode": "never"}), Path("/"), tmp_path / "out")
    assert s.pages_by_reader == {layout: 6}
    readers = [row["reader"] for shard in sorted((tmp_path / "out" / "pages").glob("task-*.parquet")) for row in pq.read_table(shard, columns=["reader"]).to_pylist()]
    assert readers == [layout] * 6
    assert json.loads(json.dumps(s.to_dict()))["pages_by_reader"] == {layout: 6}


def test_a_layout_model_failure_keeps_the_pages_geometric_reading(monkeypatch, caplog):
    def broken(page, words):
        raise RuntimeError("onnxruntime: bad input")

    monkeypatch.setattr(layoutmodel, "model_text", broken)
    with pymupdf.open(JOURNALS / "acmart.pdf") as doc:
        text, reader = layer_reading(doc[1], "model")
        assert reader == "geometry" and text == read(lines_from_words(doc[1].get_text("words")))[0]
    assert "layout model failed" in caplog.text and "bad input" in caplog.text
