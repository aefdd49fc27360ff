"""The quality columns through a mixture: each source's per-turn ratings, `verified`, `checks`
and `evidence` (docsynth.dataset.cauldron.QUALITY_COLUMNS) are carried into the mixture's rows,
with nulls where a source has none, so the rating filters of training code (nanoVLM's
*_min_rating) work on a mixture as on a docsynth dataset.

A per-turn column is kept aligned with `texts` (one value per turn, a list of nulls where the
source has no value or a list of another length), so that capping and splitting turns cut it
in the same places (docsynth.dataset.adapters.cap_and_split); a row's *_min is taken again from
its turns after that.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from docsynth.dataset.cauldron import DATASET_SCHEMA, PER_TURN, QUALITY_COLUMNS
from docsynth.dataset.sources import Source

log = logging.getLogger(__name__)


def carried_columns(src: Source) -> list[str]:
    """The quality columns of a Cauldron source that can be carried (those of another type are
    left out, with a warning naming them: the mixture has nulls there)."""
    if src.cfg.adapter is not None:
        return []
    out = []
    for c in QUALITY_COLUMNS:
        if c not in src.schema.names:
            continue
        try:
            pa.array([], src.schema.field(c).type).cast(DATASET_SCHEMA.field(c).type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            log.warning("source '%s': column '%s' is %s, not %s: not carried into the mixture", src.name, c,
                        src.schema.field(c).type, DATASET_SCHEMA.field(c).type)
            continue
        out.append(c)
    return out


def with_quality(name: str, batch: pa.RecordBatch, rows: pa.RecordBatch) -> pa.RecordBatch:
    """ROWS (Cauldron rows made from BATCH, row for row) with the top-level source NAME and every
    quality column: BATCH's own where it has it, else nulls; per-turn ones one value per turn."""
    turns = pc.list_value_length(rows.column("texts")).fill_null(0)
    n = rows.num_rows
    cols = [rows.column("images"), rows.column("texts"), pa.array([name] * n, pa.string())]
    for c in QUALITY_COLUMNS:
        t = DATASET_SCHEMA.field(c).type
        have = batch.column(c).cast(t) if c in batch.schema.names else None
        if c not in PER_TURN:
            cols.append(have if have is not None else pa.nulls(n, t))
            continue
        blank = _null_lists(turns, t)
        if have is None:
            cols.append(blank)
            continue
        fits = pc.fill_null(pc.equal(pc.list_value_length(have), turns), False)
        cols.append(have if pc.all(fits).as_py() else pc.if_else(fits, have, blank))
    return pa.RecordBatch.from_arrays(cols, schema=DATASET_SCHEMA)


def _null_lists(lengths: pa.Array, t: pa.ListType) -> pa.Array:
    counts = lengths.to_numpy(zero_copy_only=False).astype(np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, pa.nulls(int(counts.sum()), t.value_type), type=t)


def minimums(batch: pa.RecordBatch) -> pa.RecordBatch:
    """BATCH with each *_min taken again from its row's *_ratings (null where none is rated)."""
    for c in QUALITY_COLUMNS:
        if not c.endswith("_min"):
            continue
        ratings = batch.column(c.removesuffix("_min") + "_ratings")
        flat = pc.list_flatten(ratings)
        low = np.full(batch.num_rows, np.iinfo(np.int64).max)
        if len(flat):
            rows = pc.list_parent_indices(ratings).to_numpy(zero_copy_only=False)
            valid = flat.is_valid().to_numpy(zero_copy_only=False)
            np.minimum.at(low, rows[valid], flat.to_numpy(zero_copy_only=False)[valid].astype(np.int64))
        i = batch.schema.get_field_index(c)
        mins = pa.array(low, pa.int64(), mask=low == np.iinfo(np.int64).max)
        batch = batch.set_column(i, batch.schema.field(i), mins)
    return batch
