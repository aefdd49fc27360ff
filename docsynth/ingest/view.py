"""Reading ingest output back: page records from the shards of an ingest directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.tasks import TaskStore


def page_shards(out_dir: Path) -> list[Path]:
    """The finished shards of an ingest directory, in task order."""
    store = TaskStore.of(out_dir, "ingest")
    if not store.root.is_dir():
        raise DocsynthError(f"{out_dir} is not an ingest output (no {store.root.name}/ folder)")
    return store.finished_shards()


def iter_pages(out_dir: Path, columns: list[str] | None = None) -> Iterator[dict]:
    """Page rows as dicts, streamed shard by shard, row group by row group."""
    for shard in page_shards(out_dir):
        pf = pq.ParquetFile(shard)
        for batch in pf.iter_batches(batch_size=64, columns=columns):
            yield from batch.to_pylist()


def sample_pages(out_dir: Path, n: int) -> list[dict]:
    """Up to n pages, first pages of documents first, without image bytes."""
    cols = ["source", "doc_id", "page", "width", "height", "image_format", "text", "text_source", "ocr_confidence",
            "reader"]
    firsts, others = [], []
    for row in iter_pages(out_dir, cols):
        if row["page"] == 0:
            firsts.append(row)
            if len(firsts) >= n:
                break
        elif len(others) < n:
            others.append(row)
    return (firsts + others)[:n]
