"""Rows a reader cannot use, told the same way wherever docsynth data is read: no images list, no
turns list, or an image that is not one (docsynth.dataset.adapters.broken_rows: JPEG and PNG
with their end markers checked in Arrow, anything else opened by PIL)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from docsynth.dataset.adapters import broken_rows

MAX_NAMED = 10  # rows named in a message; the count is whole


def row_problems(batch: pa.RecordBatch | pa.Table, image_check: str = "header") -> dict[int, str]:
    """{row: why} of the rows of a Cauldron batch (or of the messages/finevision views) that a
    training loader would fail on or read as nothing."""
    bad: dict[int, str] = {}
    for col, why in (("images", "no images (null)"), ("texts", "no turns (null)"), ("messages", "no messages (null)")):
        if col in batch.column_names:
            nulls = pc.is_null(batch.column(col)).to_numpy(zero_copy_only=False)
            for r in np.flatnonzero(nulls).tolist():
                bad.setdefault(r, why)
    if "images" in batch.column_names and image_check != "none":
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        images = table.select(["images"]).combine_chunks().to_batches()
        for b in images:
            for r, why in broken_rows(b, image_check).items():
                bad.setdefault(r, f"broken image: {why}")
    return dict(sorted(bad.items()))
