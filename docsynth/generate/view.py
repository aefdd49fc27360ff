"""Reading generate output back: candidate rows from the shards of a generate directory."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from docsynth.errors import DocsynthError

TEXT_COLUMNS = ["sample_id", "source", "pages", "template", "questions", "answers", "text", "raw_outputs"]


def candidate_shards(out_dir: Path) -> list[Path]:
    """The finished shards of a generate directory, in task order."""
    d = out_dir / "candidates"
    if not d.is_dir():
        raise DocsynthError(f"{out_dir} is not a generate output (no candidates/ folder)")
    return sorted(p.with_name(p.name.replace(".done.json", ".parquet")) for p in d.glob("task-*.done.json"))


def sample_candidates(out_dir: Path, n: int, columns: list[str] | None = None) -> list[dict]:
    """The first n candidates, without image bytes unless asked for."""
    rows: list[dict] = []
    for shard in candidate_shards(out_dir):
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=64, columns=columns or TEXT_COLUMNS):
            rows.extend(batch.to_pylist()[: n - len(rows)])
            if len(rows) >= n:
                return rows
    return rows
