"""Rows a reader cannot use, told the same way wherever docsynth data is read: no images list, no
turns list, or an image that is not one (docsynth.dataset.adapters.broken_rows: JPEG and PNG
with their end markers checked in Arrow, anything else opened by PIL).

What each reader does with them: export leaves them out; stats counts them; preview shows why;
push refuses the dataset (a repo's readers cannot skip a row); the training loader stops at one
with an error naming it (skipping would break its exact resume). Each names the shard and row.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from docsynth.dataset.adapters import broken_rows

MAX_NAMED = 10  # rows named in a message; the count is whole


def row_problems(batch: pa.RecordBatch | pa.Table, image_check: str = "header") -> dict[int, str]:
    """{row: why} of the rows of a Cauldron batch (or of the messages/finevision views) that a
    training loader would fail on or read as nothing."""
    bad = null_rows(batch)
    if "images" in batch.column_names and image_check != "none":
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        images = table.select(["images"]).combine_chunks().to_batches()
        for b in images:
            for r, why in broken_rows(b, image_check).items():
                bad.setdefault(r, f"broken image: {why}")
    return dict(sorted(bad.items()))


def null_rows(batch: pa.RecordBatch | pa.Table) -> dict[int, str]:
    """{row: why} of the rows with no images, turns or messages list at all (null)."""
    bad: dict[int, str] = {}
    for col, why in (("images", "no images (null)"), ("texts", "no turns (null)"), ("messages", "no messages (null)")):
        if col in batch.column_names:
            nulls = pc.is_null(batch.column(col)).to_numpy(zero_copy_only=False)
            for r in np.flatnonzero(nulls).tolist():
                bad.setdefault(r, why)
    return bad


@dataclass(slots=True)
class RowCheck:
    """The unusable rows met over several shards: how many, and the first MAX_NAMED named
    ("SHARD row N: why", N counted within the shard)."""
    count: int = 0
    named: list[str] = field(default_factory=list)

    def check(self, shard: Path, first: int, group: pa.RecordBatch | pa.Table) -> dict[int, str]:
        """row_problems of a row group of shard whose first row is `first`, counted and named."""
        bad = row_problems(group)
        for r, why in bad.items():
            self.count += 1
            if len(self.named) < MAX_NAMED:
                self.named.append(f"{shard.name} row {first + r}: {why}")
        return bad

    def shards(self, shards: list[Path]) -> RowCheck:
        """Check every row of these shards, a row group at a time (images and texts only), a shard
        per core: Arrow's reads and compute release the GIL (bench/push.py: 0.5 GB checked in
        0.4 s on one core of this machine)."""
        with ThreadPoolExecutor(max(1, min(len(shards), os.cpu_count() or 1))) as pool:
            for part in pool.map(_checked, shards):  # in shard order: the rows named are the first ones
                self.count += part.count
                self.named += part.named[:MAX_NAMED - len(self.named)]
        return self

    def message(self) -> str:
        """The count and the rows named, for an error or a warning."""
        more = f"; {self.count - len(self.named):,} more" if self.count > len(self.named) else ""
        return f"{self.count:,} rows a loader cannot use ({'; '.join(self.named)}{more})"


def _checked(shard: Path) -> RowCheck:
    import pyarrow.parquet as pq

    check, pf, first = RowCheck(), pq.ParquetFile(shard), 0
    columns = [c for c in ("images", "texts", "messages") if c in pf.schema_arrow.names]
    for g in range(pf.num_row_groups):
        group = pf.read_row_group(g, columns=columns)
        check.check(shard, first, group)
        first += group.num_rows
    return check
