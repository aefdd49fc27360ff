"""The quality columns through a mixture: each source's per-turn ratings, `verified`, `checks`
and `evidence` (docsynth.dataset.cauldron.QUALITY_COLUMNS) are carried into the mixture's rows,
with nulls where a source has none, so the rating filters of training code (nanoVLM's
*_min_rating) work on a mixture as on a docsynth dataset.

A column the source does not have is null in the mixture (the whole cell), and is added only
when a shard is gathered (`conform`): spilling 16 all-null columns of nested types cost the
mixer about 15 % more CPU (bench/mix.py, issue 33). A per-turn column the source has is kept aligned with `texts` (one value per turn; a list of nulls where a row has none or a
list of another length), so that capping and splitting turns cut it in the same places
(docsynth.dataset.adapters.cap_and_split); a row's *_min is taken again from its turns after that.
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
    """ROWS (Cauldron rows made from BATCH, row for row) with the top-level source NAME and the
    quality columns BATCH has (per-turn ones one value per turn), in DATASET_SCHEMA's order; the
    others are left to `conform`."""
    n = rows.num_rows
    fields, cols = [*DATASET_SCHEMA][:3], [rows.column("images"), rows.column("texts"),
                                            pa.repeat(pa.scalar(name, pa.string()), n)]
    turns = None
    for c in QUALITY_COLUMNS:
        if c not in batch.schema.names:
            continue
        f = DATASET_SCHEMA.field(c)
        have = batch.column(c).cast(f.type)
        if c in PER_TURN:
            if turns is None:
                turns = pc.list_value_length(rows.column("texts")).fill_null(0)
            fits = pc.fill_null(pc.equal(pc.list_value_length(have), turns), False)
            have = have if pc.all(fits).as_py() else pc.if_else(fits, have, _null_lists(turns, f.type))
        fields.append(f)
        cols.append(have)
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields))


def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of with_quality in DATASET_SCHEMA: the columns it lacks, null."""
    if batch.schema.names == DATASET_SCHEMA.names:
        return pa.RecordBatch.from_arrays(batch.columns, schema=DATASET_SCHEMA)
    return pa.RecordBatch.from_arrays([batch.column(f.name) if f.name in batch.schema.names else
                                       pa.nulls(batch.num_rows, f.type) for f in DATASET_SCHEMA], schema=DATASET_SCHEMA)


def _null_lists(lengths: pa.Array, t: pa.ListType) -> pa.Array:
    counts = lengths.to_numpy(zero_copy_only=False).astype(np.int32)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    return pa.ListArray.from_arrays(offsets, pa.nulls(int(counts.sum()), t.value_type), type=t)


def minimums(batch: pa.RecordBatch, again: bool) -> pa.RecordBatch:
    """BATCH with each *_min taken from its row's *_ratings (null where none is rated), for the
    axes whose ratings it has: all of them when AGAIN (the turns were cut), else those it lacks."""
    for c in QUALITY_COLUMNS:
        if not c.endswith("_min") or c.removesuffix("_min") + "_ratings" not in batch.schema.names:
            continue
        if not again and c in batch.schema.names:
            continue
        ratings = batch.column(c.removesuffix("_min") + "_ratings")
        flat = pc.list_flatten(ratings)
        low = np.full(batch.num_rows, np.iinfo(np.int64).max)
        if len(flat):
            rows = pc.list_parent_indices(ratings).to_numpy(zero_copy_only=False)
            valid = flat.is_valid().to_numpy(zero_copy_only=False)
            np.minimum.at(low, rows[valid], flat.to_numpy(zero_copy_only=False)[valid].astype(np.int64))
        mins = pa.array(low, pa.int64(), mask=low == np.iinfo(np.int64).max)
        i = batch.schema.get_field_index(c)
        if i < 0:  # the source has ratings without their minimum: placed where DATASET_SCHEMA has it
            i = batch.schema.get_field_index(c.removesuffix("_min") + "_ratings") + 1
            batch = batch.add_column(i, DATASET_SCHEMA.field(c), mins)
        else:
            batch = batch.set_column(i, DATASET_SCHEMA.field(c), mins)
    return batch
