"""Reading ingest output back: page records from the shards of an ingest directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.errors import DocsynthError


def page_shards(out_dir: Path) -> list[Path]:
    """The finished shards of an ingest directory, in task order."""
    pages = out_dir / "pages"
    if not pages.is_dir():
        raise DocsynthError(f"{out_dir} is not an ingest output (no pages/ folder)")
    return sorted(p.with_name(p.name.replace(".done.json", ".parquet")) for p in pages.glob("task-*.done.json"))


def iter_pages(out_dir: Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Page rows as dicts, streamed shard by shard, row group by row group."""
    for shard in page_shards(out_dir):
        pf = pq.ParquetFile(shard)
        for batch in pf.iter_batches(batch_size=64, columns=columns):
            yield from batch.to_pylist()


def sample_pages(out_dir: Path, n: int) -> list[dict]:
    """Up to n pages, first pages of documents first, without image bytes."""
    cols = ["source", "doc_id", "page", "width", "height", "image_format", "text", "text_source", "ocr_confidence"]
    firsts, others = [], []
    for row in iter_pages(out_dir, cols):
        if row["page"] == 0:
            firsts.append(row)
            if len(firsts) >= n:
                break
        elif len(others) < n:
            others.append(row)
    return (firsts + others)[:n]
