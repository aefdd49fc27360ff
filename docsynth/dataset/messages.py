"""The `messages` view of a Cauldron dataset: `images` and chat `messages`, the shape TRL's VLM
SFT and Hugging Face chat templates take. The first user turn holds one `{"type": "image"}`
part per image (before its text), each pair is a user turn and an assistant turn, and the
`source` is kept per row (docsynth.dataset.cauldron.row_sources). Quality columns (ratings per
turn, `verified`) pass through.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from docsynth.dataset.cauldron import IMAGE, QUALITY_COLUMNS, row_sources, view_metadata

PART = pa.struct([("type", pa.string()), ("text", pa.string())])
MESSAGE = pa.struct([("role", pa.string()), ("content", pa.list_(PART))])
_STRING = {"dtype": "string", "_type": "Value"}
FEATURES = {"images": [{"_type": "Image"}],
            "messages": [{"role": _STRING, "content": [{"type": _STRING, "text": _STRING}]}],
            "source": _STRING}
SCHEMA = pa.schema([("images", pa.list_(IMAGE)), ("messages", pa.list_(MESSAGE)), ("source", pa.string())],
                   metadata={b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()})
CARD_FEATURES = [
    {"name": "images", "list": "image"},
    {"name": "messages", "list": [{"name": "role", "dtype": "string"},
                                  {"name": "content", "list": [{"name": "type", "dtype": "string"},
                                                               {"name": "text", "dtype": "string"}]}]},
    {"name": "source", "dtype": "string"},
]


def to_messages(texts: list[dict], images: int) -> list[dict]:
    """Chat turns of a row's QA pairs: the images as parts of the first user turn."""
    out = []
    for i, t in enumerate(texts):
        parts = [{"type": "image", "text": None} for _ in range(images)] if i == 0 else []
        out.append({"role": "user", "content": [*parts, {"type": "text", "text": t["user"]}]})
        out.append({"role": "assistant", "content": [{"type": "text", "text": t["assistant"]}]})
    return out


def messages_table(table: pa.Table) -> pa.Table:
    """A Cauldron table (with or without quality columns) in the messages view."""
    texts = table.column("texts").to_pylist()
    counts = pc.list_value_length(table.column("images")).fill_null(0).to_pylist()  # the bytes stay in Arrow
    quality = [c for c in QUALITY_COLUMNS if c in table.column_names]
    schema = pa.schema([*SCHEMA, *(table.schema.field(c) for c in quality)],
                       metadata=view_metadata(table, FEATURES, quality))
    return pa.Table.from_arrays(
        [table.column("images"), pa.array([to_messages(t or [], n) for t, n in zip(texts, counts)], pa.list_(MESSAGE)),
         row_sources(table), *(table.column(c) for c in quality)],
        schema=schema)

