"""WebDataset tar shards as inputs (PDFA's layout: KEY.pdf beside KEY.json), read in place by real
pymupdf: the same pages as the loose files, the sidecar in the pages' meta, a corrupt member and
a truncated shard rejected with their reasons while the rest is used, and a kill mid-ingest
resumed to the same result."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from docsynth.executors.local import run_ingest
from docsynth.ingest.sources import content_id
from docsynth.ingest.view import iter_pages
from tests.conftest import SAMPLES, recipe, text_pdf
from tests.cli import argv as _cli

PDFS = ["annual_report.pdf", "bericht_de.pdf", "invoice.pdf", "lettre_fr.pdf", "table_report.pdf",
        "two_column_article.pdf"]
NEVER = {"mode": "never"}


def add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tf.addfile(info, io.BytesIO(data))


def meta(name: str) -> bytes:
    return json.dumps({"url": f"https://example.org/{name}", "lang": "en"}).encode()


def shard(path: Path, docs: list[tuple[str, bytes]], sidecars: bool = True) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for key, data in docs:
            add(tf, f"{key}.pdf", data)
            if sidecars:
                add(tf, f"{key}.json", meta(key))
    return path


def pages(out: Path) -> dict[tuple[str, int], tuple]:
    """Every page by (doc_id, page): its text, how it was read, and its image's hash."""
    return {(p["doc_id"], p["page"]): (p["text"], p["text_source"], hashlib.sha256(p["image"]).hexdigest())
            for p in iter_pages(out)}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[Path, list[str]]:
    """Two PDFA-style shards of the sample PDFs: the first with a member that is no PDF, the second
    cut short inside its last document (lost: the documents before it are kept)."""
    d = tmp_path_factory.mktemp("shards")
    blobs = [(Path(n).stem, (SAMPLES / n).read_bytes()) for n in PDFS]
    shard(d / "pdfa-000.tar", [*blobs[:3], ("broken", b"%PDF-1.4 this is not a PDF at all")])
    whole = shard(d / "whole.tar", blobs[3:])
    data = whole.read_bytes()
    with tarfile.open(whole) as tf:
        cut = tf.getmember("two_column_article.pdf").offset_data + 1000  # inside the last PDF's bytes
    (d / "pdfa-001.tar").write_bytes(data[:cut])
    whole.unlink()
    return d, PDFS[:5]


def test_tar_shards_give_the_loose_files_pages_with_sidecars_and_rejects(shards, tmp_path):
    d, kept = shards
    tar = run_ingest(recipe([d], ocr=NEVER, docs_per_task=2), d, tmp_path / "tar")
    loose = run_ingest(recipe([SAMPLES / n for n in kept], ocr=NEVER, docs_per_task=2), SAMPLES, tmp_path / "loose")
    assert pages(tmp_path / "tar") == pages(tmp_path / "loose") and tar.pages == loose.pages > 0

    rows = list(iter_pages(tmp_path / "tar", ["doc_id", "source", "meta"]))
    by_doc = {content_id((SAMPLES / n).read_bytes()): Path(n).stem for n in kept}
    for r in rows:  # provenance: the member and its KEY.json
        key = by_doc[r["doc_id"]]
        assert r["source"].endswith(f".tar#{key}.pdf")
        assert json.loads(r["meta"]) == json.loads(meta(key))
    assert all(r["meta"] is None for r in iter_pages(tmp_path / "loose", ["meta"]))

    rejects = [json.loads(x) for x in (tmp_path / "tar" / "rejects.jsonl").read_text().splitlines()]
    reasons = {r["source"]: r["reason"] for r in rejects}
    assert len(rejects) == 2, rejects
    assert "pdfa-000.tar#broken.pdf" in next(s for s in reasons if "broken" in s)
    truncated = next(s for s in reasons if "pdfa-001" in s)
    assert truncated.endswith("pdfa-001.tar#two_column_article.pdf")
    assert reasons[truncated].startswith("truncated or corrupt tar") and "members after it are lost" in reasons[truncated]

    again = run_ingest(recipe([d], ocr=NEVER, docs_per_task=2), d, tmp_path / "tar")
    assert again.tasks_skipped == again.tasks  # member ranges key and resume as parquet rows do


def test_a_shard_is_read_in_place_never_extracted(shards, tmp_path, monkeypatch):
    d, _ = shards
    seen = []
    monkeypatch.setattr(tarfile.TarFile, "extractall", lambda *a, **k: seen.append("extractall"))
    monkeypatch.setattr(tarfile.TarFile, "extract", lambda *a, **k: seen.append("extract"))
    run_ingest(recipe([d], ocr=NEVER, docs_per_task=2, workers=1), d, tmp_path / "out")
    assert seen == [] and not [p for p in (tmp_path / "out").rglob("*.pdf")]


@pytest.mark.slow
def test_a_kill_mid_ingest_of_a_shard_then_a_rerun_gives_the_same_pages(tmp_path):
    docs = []
    for i in range(16):
        text_pdf(tmp_path / "p.pdf", [f"Document {i}, page {p}. Order {i * 7 + p} shipped on day {p + 1}." for p in range(2)])
        docs.append((f"doc{i:03d}", (tmp_path / "p.pdf").read_bytes()))
    src = tmp_path / "in"
    src.mkdir()
    shard(src / "pdfa-000.tar", docs)
    rec = tmp_path / "r.yaml"
    rec.write_text("inputs: {docs_per_task: 1}\ningest: {workers: 2, ocr: {mode: always}}\n")
    args = ["ingest", str(src), "--recipe", str(rec), "--json"]
    subprocess.run(_cli(*args, "--out", str(tmp_path / "clean")), check=True, capture_output=True)

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli(*args, "--out", str(out)), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "pages").glob("*.done.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting on the markers, not on time
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "pages").glob("*.done.json")))
    assert 3 <= done < 16, done
    res = subprocess.run(_cli(*args, "--out", str(out)), check=True, capture_output=True, text=True)
    assert json.loads(res.stdout)["tasks_skipped"] >= done
    assert pages(out) == pages(tmp_path / "clean") and len(pages(out)) == 32
