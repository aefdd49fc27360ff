"""The `messages` view of a Cauldron dataset: `images` and chat `messages`, the shape TRL's VLM
SFT and Hugging Face chat templates take. The first user turn holds one `{"type": "image"}`
part per image (before its text), each pair is a user turn and an assistant turn, and the
Cauldron `source` is kept per row. Quality columns (ratings per turn, `verified`) pass through.
"""

from __future__ import annotations

import json

import pyarrow as pa

from docsynth.dataset.cauldron import IMAGE, QUALITY_COLUMNS

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
    counts = [len(x or []) for x in table.column("images").to_pylist()] if table.num_rows else []
    quality = [c for c in QUALITY_COLUMNS if c in table.column_names]
    schema = pa.schema([*SCHEMA, *(table.schema.field(c) for c in quality)], metadata=_metadata(table, quality))
    return pa.Table.from_arrays(
        [table.column("images"), pa.array([to_messages(t or [], n) for t, n in zip(texts, counts)], pa.list_(MESSAGE)),
         pa.array([(t[0]["source"] if t else None) for t in texts], pa.string()), *(table.column(c) for c in quality)],
        schema=schema)


def _metadata(table: pa.Table, quality: list[str]) -> dict:
    """The datasets features of the view, with the source's own for the quality columns."""
    try:
        theirs = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    except (TypeError, KeyError, ValueError):
        theirs = {}
    features = {**FEATURES, **{c: theirs[c] for c in quality if c in theirs}}
    return {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
