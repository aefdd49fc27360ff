"""The `finevision` view of a Cauldron dataset: FineVision's shape, so that
`datasets.concatenate_datasets` takes a docsynth dataset or mixture beside a FineVision subset
without a cast.

    images: list of image
    texts:  list of {user, assistant}     (the Cauldron's per-turn source is dropped from the turns)
    source: string                        (docsynth.dataset.cauldron.row_sources)
    the quality columns the table has     (FineVision's *_ratings and *_min, and docsynth's own;
                                           concatenate_datasets gives a column one side lacks nulls)
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from docsynth.dataset.cauldron import IMAGE, QUALITY_COLUMNS, row_sources, view_metadata

TURN = pa.struct([("user", pa.string()), ("assistant", pa.string())])
_STRING = {"dtype": "string", "_type": "Value"}
FEATURES = {"images": [{"_type": "Image"}], "texts": [{"user": _STRING, "assistant": _STRING}], "source": _STRING}
SCHEMA = pa.schema([("images", pa.list_(IMAGE)), ("texts", pa.list_(TURN)), ("source", pa.string())],
                   metadata={b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()})
CARD_FEATURES = [
    {"name": "images", "list": "image"},
    {"name": "texts", "list": [{"name": "user", "dtype": "string"}, {"name": "assistant", "dtype": "string"}]},
    {"name": "source", "dtype": "string"},
]


def finevision_table(table: pa.Table) -> pa.Table:
    """A Cauldron table (with or without the top-level source and quality columns) in the
    finevision view, in Arrow throughout (no Python object per row)."""
    texts = pa.concat_arrays(table.column("texts").chunks) if table.num_rows else pa.array([], table.schema.field("texts").type)
    if texts.null_count:  # a row with no turns list: an empty one
        texts = pc.fill_null(texts, pa.scalar([], texts.type))
    flat = texts.flatten()  # the values of these rows only, even of a slice
    turns = pa.StructArray.from_arrays([pc.struct_field(flat, "user"), pc.struct_field(flat, "assistant")],
                                       fields=list(TURN))
    offsets = pc.subtract(texts.offsets, texts.offsets[0])  # a slice's offsets start where it starts
    quality = [c for c in QUALITY_COLUMNS if c in table.column_names]
    schema = pa.schema([*SCHEMA, *(table.schema.field(c) for c in quality)],
                       metadata=view_metadata(table, FEATURES, quality))
    return pa.Table.from_arrays(
        [table.column("images"), pa.ListArray.from_arrays(offsets, turns, type=pa.list_(TURN)),
         row_sources(table), *(table.column(c) for c in quality)], schema=schema)
