"""Shared fixtures: the real sample corpus, and builders of real malformed PDFs."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pymupdf
import pytest

from docsynth.dataset.cauldron import SCHEMA
from docsynth.config.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_pdfs"


@pytest.fixture
def samples() -> Path:
    return SAMPLES


def recipe(paths: list, **ingest) -> Recipe:
    """A recipe over paths with ingest overrides (workers default to 2 to match CI's cores)."""
    ingest.setdefault("workers", 2)
    ocr = ingest.pop("ocr", {})
    return Recipe.model_validate({"inputs": {"paths": [str(p) for p in paths], "docs_per_task": ingest.pop("docs_per_task", 2)},
                                  "ingest": {**ingest, "ocr": ocr}})


def shard_names(data: Path) -> list[str]:
    """The files of a dataset's data/ folder, with the version taken out of shard names
    (train-00000-of-00002-VVVVVVVV.parquet -> train-00000-of-00002.parquet); hidden files (the
    card, .README.md) left out."""
    return sorted(re.sub(r"-[0-9a-f]{8}\.parquet$", ".parquet", p.name) for p in data.iterdir() if not p.name.startswith("."))


def text_pdf(path: Path, pages: list[str], size=(595, 842)) -> Path:
    """A born-digital PDF with one paragraph of text per page."""
    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_textbox(pymupdf.Rect(50, 50, size[0] - 50, size[1] - 50), text, fontsize=11)
    doc.save(path, no_new_id=True)
    return path


def raw_pdf(objects: list[bytes]) -> bytes:
    """A PDF with a correct xref table from raw object bodies (1-based numbering)."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj" % i + body + b"endobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def hanging_page_pdf(path: Path) -> Path:
    """Three pages; the middle one holds a tiling pattern with a microscopic step, on which
    mupdf's renderer hangs (real mupdf behaviour, not a mock)."""
    doc = pymupdf.open()
    for i in range(3):
        page = doc.new_page()
        page.insert_text((72, 72), f"Page {i} of the document with a hostile middle page.", fontsize=12)
    page = doc[1]
    pat = doc.get_new_xref()
    doc.update_object(pat, "<</PatternType 1/PaintType 1/TilingType 1/BBox[0 0 0.0001 0.0001]"
                           "/XStep 0.0001/YStep 0.0001/Resources<<>>/Length 0>>")
    doc.update_stream(pat, b"0 0 1 1 re f")
    doc.xref_set_key(page.xref, "Resources", f"<</Pattern<</P0 {pat} 0 R>>>>")
    doc.update_stream(page.get_contents()[0], b"/Pattern cs /P0 scn 0 0 100 100 re f")
    doc.save(path)
    return path


@pytest.fixture
def bad_pdfs(tmp_path: Path, samples: Path) -> dict[str, Path]:
    """One real file per kind of bad input, beside one good document."""
    d = tmp_path / "bad"
    d.mkdir()
    good = shutil.copy(samples / "invoice.pdf", d / "good.pdf")
    report = (samples / "annual_report.pdf").read_bytes()
    files = {"good": Path(good)}
    files["truncated"] = d / "truncated.pdf"
    files["truncated"].write_bytes(report[: len(report) // 2])
    files["corrupt"] = d / "corrupt.pdf"
    files["corrupt"].write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    files["empty"] = d / "empty.pdf"
    files["empty"].write_bytes(b"")
    files["not_pdf"] = d / "photo.pdf"
    files["not_pdf"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    files["zero_pages"] = d / "zero_pages.pdf"
    files["zero_pages"].write_bytes(raw_pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]))
    src = pymupdf.open(samples / "lettre_fr.pdf")
    files["encrypted_locked"] = d / "locked.pdf"
    src.save(files["encrypted_locked"], encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="secret")
    files["encrypted_open"] = d / "owner_only.pdf"
    src.save(files["encrypted_open"], encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="")
    files["huge_page"] = d / "poster.pdf"
    text_pdf(files["huge_page"], ["A poster of enormous size. " * 20], size=(14400, 14400))
    return files


# The tiny model for the real vLLM engine, shared by every test directory (one engine per session).
from tests.dataset.mixsources import picture  # noqa: E402
from tests.generate.conftest import tiny_model  # noqa: E402, F401


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> Path:
    """20 samples: 'alpha' 10 (1 turn, 1 PNG 300x200), 'beta' 6 (3 turns, 2 JPEGs 1000x600),
    'gamma' 4 (2 turns, 1 JPEG 600x2500); questions of 10 characters, answers of 40 (beta: 5)."""
    d = tmp_path_factory.mktemp("known")
    (d / "data").mkdir()
    rows = []
    for name, n, turns, pics, answer in (("alpha", 10, 1, [picture(300, 200, "PNG")], "a" * 40),
                                         ("beta", 6, 3, [picture(1000, 600, "JPEG")] * 2, "bbbbb"),
                                         ("gamma", 4, 2, [picture(600, 2500, "JPEG")], "c" * 40)):
        for i in range(n):
            rows.append({"images": [{"bytes": p, "path": None} for p in pics],
                         "texts": [{"user": "question ?", "assistant": answer, "source": f"{name} row:{i}"}] * turns})
    pq.write_table(pa.Table.from_pylist(rows[:12], schema=SCHEMA), d / "data" / "train-00000-of-00002.parquet", row_group_size=5)
    pq.write_table(pa.Table.from_pylist(rows[12:], schema=SCHEMA), d / "data" / "train-00001-of-00002.parquet")
    return d
