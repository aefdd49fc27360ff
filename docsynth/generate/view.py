"""Reading generate output back: candidate rows from the shards of a generate directory."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.tasks import TaskStore

TEXT_COLUMNS = ["sample_id", "source", "pages", "template", "questions", "answers", "text", "raw_outputs"]


def candidate_shards(out_dir: Path) -> list[Path]:
    """The finished shards of a generate directory, in task order."""
    store = TaskStore.of(out_dir, "generate")
    if not store.root.is_dir():
        raise DocsynthError(f"{out_dir} is not a generate output (no {store.root.name}/ folder)")
    return store.finished_shards()


def sample_candidates(out_dir: Path, n: int, columns: list[str] | None = None) -> list[dict]:
    """The first n candidates, without image bytes unless asked for."""
    rows: list[dict] = []
    for shard in candidate_shards(out_dir):
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=64, columns=columns or TEXT_COLUMNS):
            rows.extend(batch.to_pylist()[: n - len(rows)])
            if len(rows) >= n:
                return rows
    return rows
