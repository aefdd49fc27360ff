"""Datasets and evaluation sets for the decontamination tests: real pages (sample_pdfs/ and
synthetic pages of many layouts, tests/pages.py) rendered with pymupdf, and altered copies of them
as the issue lists (JPEG quality 60, 0.5x and 1.7x, a 3 % crop, greyscale, another dpi)."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pymupdf
from PIL import Image

from docsynth.dataset.cauldron import SCHEMA, cauldron_row, rows_to_table, write_shard
from tests.pages import synthetic_pdf

ROOT = Path(__file__).resolve().parents[2]
ALTERATIONS = ("q60", "x0.5", "x1.7", "crop3", "grey", "dpi72", "dpi200")


def pages(n_synthetic: int, seed: int = 0, samples: bool = True) -> list[pymupdf.Page]:
    docs = [pymupdf.open(f) for f in sorted((ROOT / "sample_pdfs").glob("*.pdf"))] if samples else []
    docs.append(pymupdf.open(stream=synthetic_pdf(n_synthetic, seed)))
    return [p for d in docs for p in d]


def render(page: pymupdf.Page, dpi: int = 150) -> bytes:
    """As ingest renders a page: RGB, JPEG quality 90 (baseline, like simplejpeg's)."""
    pix = page.get_pixmap(dpi=dpi)
    return _jpeg(Image.frombytes("RGB", (pix.width, pix.height), pix.samples))


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    b = io.BytesIO()
    im.convert("RGB").save(b, "JPEG", quality=quality)
    return b.getvalue()


def altered(page: pymupdf.Page, kind: str) -> bytes:
    im = Image.open(io.BytesIO(render(page)))
    w, h = im.size
    if kind == "q60":
        return _jpeg(im, 60)
    if kind in ("x0.5", "x1.7"):
        f = float(kind[1:])
        return _jpeg(im.resize((int(w * f), int(h * f))))
    if kind == "crop3":
        c = int(0.03 * w), int(0.03 * h)
        return _jpeg(im.crop((c[0], c[1], w - c[0], h - c[1])))
    if kind == "grey":
        b = io.BytesIO()
        im.convert("L").save(b, "PNG")
        return b.getvalue()
    return page.get_pixmap(dpi=int(kind[3:])).tobytes("png")


def cauldron_dataset(folder: Path, images: list[bytes], turns: list[list[tuple[str, str]]]) -> Path:
    """A plain Cauldron dataset: one row per image, with its turns, in two shards."""
    rows = [cauldron_row([im], [q for q, _ in t], [a for _, a in t], "test") for im, t in zip(images, turns)]
    (folder / "data").mkdir(parents=True)
    half = len(rows) // 2
    for i, part in enumerate((rows[:half], rows[half:])):
        write_shard(rows_to_table(part, SCHEMA), folder / "data" / f"train-{i:05d}-of-00002.parquet", 2_000_000)
    return folder


def docvqa_set(path: Path, images: list[bytes | None], questions: list[str], answers: list[list[str]]) -> Path:
    """A DocVQA-style table as released: image, question, answers (a list)."""
    t = pa.table({"image": pa.array([{"bytes": b, "path": None} for b in images],
                                    pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                  "question": questions, "answers": answers, "questionId": list(range(len(images)))})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path)
    return path
