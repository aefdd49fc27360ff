"""Every kind of bad input: rejected with a clear reason, counted, and the rest goes on."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from docsynth.core.errors import MissingDependencyError
from docsynth.core.tasks import Task, TaskStore
from docsynth.ingest import pages as ingest_pages
from docsynth.ingest.ocr import check_tesseract
from docsynth.executors.local import run_ingest
from docsynth.ingest.view import iter_pages
from tests.conftest import hanging_page_pdf, recipe


def _rejects(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]


def _by_file(rejects: list[dict]) -> dict[str, list[dict]]:
    by: dict[str, list[dict]] = {}
    for r in rejects:
        by.setdefault(Path(r["source"]).name, []).append(r)
    return by


@pytest.fixture
def bad_run(bad_pdfs, tmp_path):
    out = tmp_path / "out"
    summary = run_ingest(recipe([bad_pdfs["good"].parent], docs_per_task=3, ocr={"mode": "never"}), Path("/"), out)
    return summary, out, _by_file(_rejects(out))


@pytest.mark.parametrize("name, reason", [
    ("corrupt.pdf", "corrupt PDF"),
    ("empty.pdf", "empty file"),
    ("photo.pdf", "not a PDF (no %PDF header; looks like a PNG image)"),
    ("zero_pages.pdf", "PDF has no pages"),
    ("locked.pdf", "encrypted PDF: a password is needed to open it"),
])
def test_bad_file_is_rejected_with_its_reason(bad_run, name, reason):
    summary, out, by = bad_run
    assert name in by, f"{name} not in rejects: {sorted(by)}"
    (rej,) = by[name]
    assert rej["reason"].startswith(reason)
    assert rej["page"] is None and rej["stage"] == "ingest"
    if name != "empty.pdf":  # an empty file has no content to hash
        assert len(rej["doc_id"]) == 24


def test_good_documents_survive_beside_bad_ones(bad_run, bad_pdfs):
    summary, out, by = bad_run
    pages = list(iter_pages(out, ["source", "page", "text"]))
    sources = {Path(p["source"]).name for p in pages}
    assert {"good.pdf", "owner_only.pdf", "poster.pdf"} <= sources  # owner-only encryption opens
    assert any("INV-2024-00871" in p["text"] for p in pages if p["source"].endswith("good.pdf"))
    assert summary.rejects == sum(len(v) for v in by.values())
    assert summary.reject_reasons["empty file"] == 1


def test_truncated_file_keeps_intact_pages_and_rejects_damaged_ones(bad_run):
    summary, out, by = bad_run
    pages = [p for p in iter_pages(out, ["source", "page", "text"]) if p["source"].endswith("truncated.pdf")]
    assert [p["page"] for p in pages] == [0]  # the first half of the file held page 0 whole
    assert "412,000 residents" in pages[0]["text"]
    damaged = sorted(r["page"] for r in by["truncated.pdf"])
    assert damaged == [1, 2, 3]
    assert all(r["reason"].startswith("damaged page in a repaired file") for r in by["truncated.pdf"])


def test_enormous_page_is_downscaled_under_the_pixel_cap(bad_run):
    _, out, _ = bad_run
    (poster,) = [p for p in iter_pages(out, ["source", "width", "height", "dpi"]) if p["source"].endswith("poster.pdf")]
    assert poster["width"] * poster["height"] <= 12_000_000
    assert poster["width"] == poster["height"]  # aspect kept
    assert poster["dpi"] < 20  # 200 inches wide: far below the 150 dpi asked for


@pytest.mark.slow
def test_page_that_hangs_mupdf_is_rejected_and_the_rest_kept(tmp_path):
    """A real mupdf hang (microscopic tiling pattern): the watchdog ends the worker, the
    retry skips that page, the document's other pages and other documents are kept."""
    src = tmp_path / "in"
    src.mkdir()
    hanging_page_pdf(src / "hostile.pdf")
    (src / "invoice.pdf").write_bytes((Path(__file__).parents[2] / "sample_pdfs/invoice.pdf").read_bytes())
    out = tmp_path / "out"
    summary = run_ingest(recipe([src], docs_per_task=2, page_timeout_s=3, ocr={"mode": "never"}), Path("/"), out)
    kept = sorted((Path(p["source"]).name, p["page"]) for p in iter_pages(out, ["source", "page"]))
    assert kept == [("hostile.pdf", 0), ("hostile.pdf", 2), ("invoice.pdf", 0)]
    (rej,) = _rejects(out)
    assert rej["page"] == 1 and rej["reason"] == "page timed out after 3 s (rendering hung)"
    assert summary.rejects == 1


def test_exception_inside_rendering_rejects_only_that_page(tmp_path, samples, monkeypatch):
    """mupdf 1.28 recovers from every malformed construct we tried (the real failure is the
    hang above), so a raise inside render is simulated here, in-process."""
    real = ingest_pages.render
    calls = {"n": 0}

    def flaky(page, cfg):
        calls["n"] += 1
        if page.number == 1:
            raise RuntimeError("code=2: cannot render page")
        return real(page, cfg)

    monkeypatch.setattr(ingest_pages, "render", flaky)
    rejects, pages = [], []
    store = TaskStore(tmp_path / "s")
    store.prepare()
    watch = ingest_pages.PageWatch(store, Task(0, "k"))
    data = (samples / "annual_report.pdf").read_bytes()
    from docsynth.ingest.sources import DocRef, content_id
    ref = DocRef(content_id(data), "annual_report.pdf")
    cfg = recipe([], ocr={"mode": "never"}).ingest
    pages = list(ingest_pages.document_pages(ref, data, cfg, lambda r, p, why: rejects.append((p, why)), watch))
    assert [p.page for p in pages] == [0, 2, 3]
    assert rejects == [(1, "page failed: RuntimeError: code=2: cannot render page")]


def _fake_tesseract(bin_dir: Path, real: str, body: str) -> None:
    """A `tesseract` on PATH that answers --version/--list-langs like the real one but does
    `body` for OCR."""
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "tesseract"
    exe.write_text(f'#!/bin/sh\ncase "$1" in --version|--list-langs) exec {real} "$@";; esac\n{body}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


@pytest.mark.slow
def test_ocr_call_that_hangs_times_out_per_page(tmp_path, samples, monkeypatch):
    import shutil
    real = shutil.which("tesseract")
    _fake_tesseract(tmp_path / "bin", real, "sleep 60")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    summary = run_ingest(recipe([samples / "scanned_report.pdf", samples / "invoice.pdf"],
                                ocr={"mode": "auto", "timeout_s": 2}), Path("/"), out)
    rej = _rejects(out)
    assert sorted(r["page"] for r in rej) == [0, 1]
    assert all(r["reason"] == "OCR timed out after 2 s" for r in rej)
    assert summary.pages == 1 and summary.pages_by_source == {"layer": 1}  # the invoice needs no OCR


def test_missing_tesseract_is_a_clear_error_before_any_work(tmp_path, samples, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract anywhere
    out = tmp_path / "out"
    with pytest.raises(MissingDependencyError, match="apt-get install tesseract-ocr"):
        run_ingest(recipe([samples / "invoice.pdf"]), Path("/"), out)
    assert not (out / "pages").exists()


def test_missing_language_pack_names_the_apt_package():
    with pytest.raises(MissingDependencyError, match=r"no language data for jpn, chi_sim .*apt-get install "
                                                     r"tesseract-ocr-jpn tesseract-ocr-chi-sim"):
        check_tesseract("eng+jpn+chi_sim")


def test_ocr_never_does_not_need_tesseract(tmp_path, samples, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    summary = run_ingest(recipe([samples / "invoice.pdf"], ocr={"mode": "never"}), Path("/"), tmp_path / "out")
    assert summary.pages == 1


def test_entries_that_are_not_regular_files_are_rejected_with_why(tmp_path, samples):
    """Through the CLI: a symlink loop, a self-link, a dangling link, a link to /dev/zero and a
    FIFO in an input folder are each a reject naming what they are (never opened: a FIFO would
    block), the good PDF beside them is ingested, and a FIFO named on the command line is a
    reject too, not "input not found"."""
    import subprocess
    import sys

    d = tmp_path / "in"
    d.mkdir()
    (d / "good.pdf").write_bytes((samples / "invoice.pdf").read_bytes())
    os.symlink("b.pdf", d / "a.pdf")
    os.symlink("a.pdf", d / "b.pdf")
    os.symlink("self.pdf", d / "self.pdf")
    os.symlink("nowhere.pdf", d / "dangling.pdf")
    os.symlink("/dev/zero", d / "zero.pdf")
    os.mkfifo(d / "fifo.pdf")

    def ingest(inp, out):
        return subprocess.run([sys.executable, "-m", "docsynth.cli", "ingest", str(inp), "--out", str(out), "--ocr",
                               "never", "--json"], capture_output=True, text=True, timeout=120)
    res = ingest(d, tmp_path / "out")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["pages"] == 1 and s["rejects"] == 6
    why = {Path(r["source"]).name: r["reason"] for r in _rejects(tmp_path / "out")}
    assert why == {"a.pdf": "a symbolic link loop", "b.pdf": "a symbolic link loop", "self.pdf": "a symbolic link loop",
                   "dangling.pdf": "a dangling symbolic link", "fifo.pdf": "not a regular file: a FIFO",
                   "zero.pdf": "not a regular file: a character device (through a symbolic link)"}
    res = ingest(d / "fifo.pdf", tmp_path / "out2")
    assert res.returncode == 4 and "not found" not in res.stderr  # it exists: nothing was produced from it
    assert [r["reason"] for r in _rejects(tmp_path / "out2")] == ["not a regular file: a FIFO"]


def test_sigterm_leaves_no_temporary_shard_or_breadcrumb(tmp_path, samples):
    """Through the CLI: SIGTERM while workers OCR pages; the command exits 143 and the stage
    folder holds finished tasks only (no .tmp shard, no current.json breadcrumb), and a rerun
    resumes."""
    import signal
    import subprocess
    import sys
    import time

    import pymupdf

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        scan = pymupdf.open(samples / "scanned_report.pdf")
        scan.set_metadata({"title": f"copy {i}"})  # other bytes: another document
        scan.save(docs / f"scan{i:02d}.pdf")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "docsynth.cli", "ingest", str(docs), "--out", str(out), "--ocr", "always",
           "--set", "inputs.docs_per_task=1", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "pages").glob("task-*.current.json")):  # a worker is on a page
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no page started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, proc.stderr.read()[-2000:]
    left = sorted(p.name for p in (out / "pages").iterdir())
    assert not [n for n in left if n.endswith(".tmp") or n.endswith("current.json")], left
    res = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and json.loads(res.stdout)["docs"] == 12, res.stderr[-2000:]
