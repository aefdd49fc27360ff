"""The ingest stage: ids, de-duplication, parquet inputs, formats, determinism, resume."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from docsynth.core.errors import DocsynthError
from docsynth.ingest.sources import content_id
from docsynth.executors.local import run_ingest
from docsynth.ingest.view import iter_pages
from tests.conftest import recipe, text_pdf
from tests.cli import argv as _cli

NEVER = {"mode": "never"}


def _rows(out: Path) -> list[tuple]:
    """Every page as comparable values, image bytes hashed, in output order."""
    return [(p["doc_id"], p["source"], p["page"], p["text"], p["text_source"],
             hashlib.sha256(p["image"]).hexdigest())
            for p in iter_pages(out)]


def test_doc_id_is_the_content_hash_and_duplicates_are_ingested_once(tmp_path, samples):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(samples / "invoice.pdf", d / "a.pdf")
    shutil.copy(samples / "invoice.pdf", d / "b-same-invoice.pdf")
    shutil.copy(samples / "bericht_de.pdf", d / "c.pdf")
    summary = run_ingest(recipe([d], ocr=NEVER), Path("/"), tmp_path / "out")
    rows = list(iter_pages(tmp_path / "out", ["doc_id", "source"]))
    assert summary.docs == 2 and len(rows) == 2
    assert rows[0]["doc_id"] == content_id((samples / "invoice.pdf").read_bytes())
    assert Path(rows[0]["source"]).name == "a.pdf"  # first in path order wins


def test_reruns_give_the_same_ids_and_bytes(tmp_path, samples):
    r = recipe([samples], docs_per_task=3)
    run_ingest(r, Path("/"), tmp_path / "one")
    run_ingest(r, Path("/"), tmp_path / "two")
    assert _rows(tmp_path / "one") == _rows(tmp_path / "two")
    for a, b in zip(sorted((tmp_path / "one/pages").glob("*.parquet")), sorted((tmp_path / "two/pages").glob("*.parquet"))):
        assert a.read_bytes() == b.read_bytes()


def test_inputs_as_files_dirs_and_globs_agree(tmp_path, samples):
    by_dir = run_ingest(recipe([samples], ocr=NEVER), Path("/"), tmp_path / "d")
    by_glob = run_ingest(recipe([str(samples / "*.pdf")], ocr=NEVER), Path("/"), tmp_path / "g")
    files = sorted(samples.glob("*.pdf"))
    by_files = run_ingest(recipe(files, ocr=NEVER), Path("/"), tmp_path / "f")
    assert by_dir.docs == by_glob.docs == by_files.docs == len(files)
    assert _rows(tmp_path / "d") == _rows(tmp_path / "g") == _rows(tmp_path / "f")


def test_missing_input_is_an_error_naming_it(tmp_path):
    with pytest.raises(DocsynthError, match="input not found: .*nope.pdf"):
        run_ingest(recipe([tmp_path / "nope.pdf"]), Path("/"), tmp_path / "out")
    with pytest.raises(DocsynthError, match="glob matches no files"):
        run_ingest(recipe([str(tmp_path / "*.pdf")]), Path("/"), tmp_path / "out")


def _parquet_of_pdfs(path: Path, pdfs: list[bytes | None], column="pdf") -> Path:
    table = pa.table({"url": [f"https://example.org/{i}.pdf" for i in range(len(pdfs))],
                      column: pa.array(pdfs, type=pa.binary())})
    pq.write_table(table, path, row_group_size=2)
    return path


def test_parquet_input_with_a_pdf_column(tmp_path, samples):
    blobs = [(samples / n).read_bytes() for n in ("invoice.pdf", "lettre_fr.pdf", "annual_report.pdf")]
    src = _parquet_of_pdfs(tmp_path / "docs.parquet", [blobs[0], None, blobs[1], blobs[2], blobs[0]])
    summary = run_ingest(recipe([src], ocr=NEVER), Path("/"), tmp_path / "out")
    rows = list(iter_pages(tmp_path / "out", ["source", "page", "doc_id", "text"]))
    assert summary.docs == 3  # the null cell rejected, the repeated invoice ingested once
    assert [r["source"].rsplit("#", 1)[1] for r in rows] == ["0", "2", "3", "3", "3", "3"]
    assert rows[0]["doc_id"] == content_id(blobs[0]) and "INV-2024-00871" in rows[0]["text"]
    rej = [json.loads(x) for x in (tmp_path / "out/rejects.jsonl").read_text().splitlines()]
    assert rej == [{"doc_id": None, "page": None, "reason": "empty or null PDF cell",
                    "source": f"{src}#1", "stage": "ingest"}]


def test_parquet_input_with_the_column_named_in_the_recipe(tmp_path, samples):
    src = _parquet_of_pdfs(tmp_path / "d.parquet", [(samples / "invoice.pdf").read_bytes()], column="bytes")
    r = recipe([src], ocr=NEVER)
    with pytest.raises(DocsynthError, match=r"d.parquet: no column 'pdf' holding PDFs \(columns: url, bytes\)"):
        run_ingest(r, Path("/"), tmp_path / "out")
    r.inputs.pdf_column = "url"
    with pytest.raises(DocsynthError, match="column 'url' is string, not binary PDF bytes"):
        run_ingest(r, Path("/"), tmp_path / "out")
    r.inputs.pdf_column = "bytes"
    assert run_ingest(r, Path("/"), tmp_path / "out").pages == 1


@pytest.mark.parametrize("fmt, pil", [("jpeg", "JPEG"), ("png", "PNG"), ("webp", "WEBP")])
def test_image_formats_decode_at_the_recipe_dpi(tmp_path, samples, fmt, pil):
    run_ingest(recipe([samples / "invoice.pdf"], image_format=fmt, dpi=100, ocr=NEVER), Path("/"), tmp_path / "o")
    (row,) = iter_pages(tmp_path / "o")
    img = Image.open(io.BytesIO(row["image"]))
    assert img.format == pil and row["image_format"] == fmt
    assert img.size == (row["width"], row["height"]) == (827, 1170)  # A4 at 100 dpi, aspect kept
    assert row["dpi"] == pytest.approx(100)


def test_rerun_skips_finished_tasks_and_a_config_change_redoes_them(tmp_path, samples):
    r = recipe([samples], docs_per_task=2, ocr=NEVER)
    first = run_ingest(r, Path("/"), tmp_path / "out")
    again = run_ingest(r, Path("/"), tmp_path / "out")
    assert again.tasks_skipped == again.tasks == first.tasks and again.pages_this_run == 0
    r.ingest.dpi = 72
    changed = run_ingest(r, Path("/"), tmp_path / "out")
    assert changed.tasks_skipped == 0 and changed.pages_this_run == first.pages
    widths = {p["width"] for p in iter_pages(tmp_path / "out", ["width"])}
    assert widths == {595}  # every shard was rewritten at 72 dpi


def test_fewer_inputs_prune_stale_shards(tmp_path, samples):
    run_ingest(recipe([samples], docs_per_task=1, ocr=NEVER), Path("/"), tmp_path / "out")
    summary = run_ingest(recipe([samples / "invoice.pdf"], docs_per_task=1, ocr=NEVER), Path("/"), tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out/pages").glob("*.parquet")) == ["task-00000.parquet"]
    assert summary.pages == 1


def _corpus(d: Path, n: int) -> Path:
    d.mkdir()
    for i in range(n):
        text_pdf(d / f"doc{i:03d}.pdf", [f"Document {i}, page {p}. Order {i * 7 + p} of item {i ** 2} "
                                          f"was shipped on day {p + 1}." for p in range(2)])
    return d


@pytest.mark.slow
def test_kill_9_at_several_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    src = _corpus(tmp_path / "in", 16)
    rec = tmp_path / "r.yaml"
    rec.write_text("inputs: {docs_per_task: 1}\ningest: {workers: 2, ocr: {mode: always}}\n")
    args = ["ingest", str(src), "--recipe", str(rec), "--json"]
    subprocess.run(_cli(*args, "--out", str(tmp_path / "clean")), check=True, capture_output=True)

    out = tmp_path / "killed"
    done_at_kill = []
    for kill_after in (2, 7):  # markers present when SIGKILL hits the whole process group
        proc = subprocess.Popen(_cli(*args, "--out", str(out)), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while len(list((out / "pages").glob("*.done.json"))) < kill_after and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_at_kill.append(len(list((out / "pages").glob("*.done.json"))))
    assert done_at_kill[0] >= 2 and done_at_kill[1] < 16, done_at_kill
    res = subprocess.run(_cli(*args, "--out", str(out)), check=True, capture_output=True, text=True)
    summary = json.loads(res.stdout)
    assert summary["tasks_skipped"] >= done_at_kill[1]
    assert _rows(out) == _rows(tmp_path / "clean")
    keys = [(r[0], r[2]) for r in _rows(out)]
    assert len(keys) == len(set(keys)) == 32
    assert not list((out / "pages").glob(".*.tmp"))


def test_parquet_rows_of_one_row_group_are_read_with_one_read(tmp_path, samples, monkeypatch):
    from docsynth.ingest import sources

    blobs = [(samples / n).read_bytes() for n in ("invoice.pdf", "lettre_fr.pdf", "annual_report.pdf", "bericht_de.pdf")]
    src = _parquet_of_pdfs(tmp_path / "docs.parquet", blobs)  # row groups of 2 rows
    reads = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group", lambda self, i, **kw: reads.append(i) or real(self, i, **kw))
    sources._row_group_column.cache_clear()
    refs = [sources.DocRef(content_id(b), str(src), i) for i, b in enumerate(blobs)]
    assert [sources.read_document(r, "pdf") for r in refs] == blobs
    assert reads == [0, 1]
    with pytest.raises(DocsynthError, match="row is past the end"):
        sources.read_document(sources.DocRef("x", str(src), 4), "pdf")
