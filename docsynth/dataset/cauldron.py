"""The Cauldron/Docmatix row format, and its parquet schema with the features `datasets` reads.

    images: list of image             (datasets: List(Image()))
    texts:  list of {user, assistant, source}
"""

from __future__ import annotations

import json

import pyarrow as pa

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # how datasets stores an Image
TEXT = pa.struct([("user", pa.string()), ("assistant", pa.string()), ("source", pa.string())])
_STRING = {"dtype": "string", "_type": "Value"}
# The list-literal form ([feature]) is read as a list feature by every datasets release.
FEATURES = {"images": [{"_type": "Image"}], "texts": [{"user": _STRING, "assistant": _STRING, "source": _STRING}]}
SCHEMA = pa.schema([("images", pa.list_(IMAGE)), ("texts", pa.list_(TEXT))],
                   metadata={b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()})
# The dataset card's dataset_info.features, in the Hub's YAML form.
CARD_FEATURES = [
    {"name": "images", "list": "image"},
    {"name": "texts", "list": [{"name": "user", "dtype": "string"}, {"name": "assistant", "dtype": "string"},
                               {"name": "source", "dtype": "string"}]},
]


def cauldron_row(images: list[bytes], questions: list[str], answers: list[str], source: str) -> dict:
    """One row: the sample's page images, and one user/assistant turn per QA pair."""
    return {"images": [{"bytes": b, "path": None} for b in images],
            "texts": [{"user": q, "assistant": a, "source": source} for q, a in zip(questions, answers)]}


def rows_to_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)
