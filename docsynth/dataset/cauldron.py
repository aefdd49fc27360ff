"""The Cauldron/Docmatix row format, and its parquet schema with the features `datasets` reads.

    images: list of image             (datasets: List(Image()))
    texts:  list of {user, assistant, source}

A docsynth dataset (the write stage's output, DATASET_SCHEMA) and a docsynth mixture add a
top-level `source` (FineVision's: a dataset, the row's provenance, "docsynth:RECIPE doc:ID
pages:A-B template:T model:M", the same as in its turns; a mixture, the name of the row's source)
and per-turn quality columns, in FineVision's names, so training code that reads those filters
it unchanged:

    AXIS_ratings: list of int64 1-5 or null, one per turn   (AXIS in docsynth.core.records.RATING_AXES)
    AXIS_min:     int64 or null, the lowest rating of the row's turns
    verified:     list of bool or null, one per turn: the verify stage's checks agreed / one disagreed / not checked
    checks:       list of {evidence, type, choice, vote, round_trip} per turn, each bool or null (not run)
    evidence:     list of {page, start, end, kind, key, text} per turn: an answer-first pair's span (null for a
                  model-first pair); start and end index the page text the model was given

Every reader of a source reads SCHEMA (images, texts); the mixer carries the quality columns a
source has, and writes nulls where it has none (docsynth.dataset.adapters.with_quality).
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from docsynth.core.errors import DocsynthError
from docsynth.core.records import CHECK_NAMES, CHECKS, EVIDENCE, RATING_AXES
from docsynth.dataset.versions import card_rows, live_shards

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

RATED_COLUMNS = [c for a in RATING_AXES for c in (f"{a}_ratings", f"{a}_min")]
QUALITY_COLUMNS = RATED_COLUMNS + ["verified", "checks", "evidence"]
_INT = {"dtype": "int64", "_type": "Value"}
_BOOL = {"dtype": "bool", "_type": "Value"}
_EVIDENCE_FIELDS = {"page": "int32", "start": "int32", "end": "int32", "kind": "string", "key": "string",
                    "text": "string"}
assert list(_EVIDENCE_FIELDS) == EVIDENCE.names
_QUALITY_FEATURES = {**{c: ([_INT] if c.endswith("_ratings") else _INT) for c in RATED_COLUMNS},
                     "verified": [_BOOL], "checks": [{c: _BOOL for c in CHECK_NAMES}],
                     "evidence": [{k: {"dtype": t, "_type": "Value"} for k, t in _EVIDENCE_FIELDS.items()}]}
PER_TURN = [c for c in QUALITY_COLUMNS if not c.endswith("_min")]  # one value per turn: cut and split with texts
DATASET_SCHEMA = pa.schema(
    [*SCHEMA, ("source", pa.string()), *((c, pa.list_(pa.int64()) if c.endswith("_ratings") else pa.int64()) for c in RATED_COLUMNS),
     ("verified", pa.list_(pa.bool_())), ("checks", pa.list_(CHECKS)), ("evidence", pa.list_(EVIDENCE))],
    metadata={b"huggingface": json.dumps({"info": {"features": {**FEATURES, "source": _STRING,
                                                                **_QUALITY_FEATURES}}}).encode()})
DATASET_CARD_FEATURES = CARD_FEATURES + [{"name": "source", "dtype": "string"}] + [
    {"name": c, **({"list": "int64"} if c.endswith("_ratings") else {"dtype": "int64"})} for c in RATED_COLUMNS
] + [{"name": "verified", "list": "bool"}, {"name": "checks", "list": [{"name": c, "dtype": "bool"} for c in CHECK_NAMES]},
     {"name": "evidence", "list": [{"name": k, "dtype": t} for k, t in _EVIDENCE_FIELDS.items()]}]


def cauldron_row(images: list[bytes], questions: list[str], answers: list[str], source: str,
                 ratings: dict[str, list[int | None]] | None = None, verified: list[bool | None] | None = None,
                 checks: list[dict | None] | None = None, evidence: list[dict | None] | None = None) -> dict:
    """One row: the sample's page images, and one user/assistant turn per QA pair; with ratings
    (axis -> one per turn, None where not rated) or verified, the top-level source and the quality
    columns too (checks and evidence: one per turn, None where there is none)."""
    row = {"images": [{"bytes": b, "path": None} for b in images],
           "texts": [{"user": q, "assistant": a, "source": source} for q, a in zip(questions, answers)]}
    if ratings is None and verified is None:
        return row
    row["source"] = source
    n = len(questions)
    for a in RATING_AXES:
        turns = (ratings or {}).get(a) or [None] * n
        row[f"{a}_ratings"] = turns
        row[f"{a}_min"] = min((r for r in turns if r is not None), default=None)
    row["verified"] = verified or [None] * n
    row["checks"] = [c or {k: None for k in CHECK_NAMES} for c in (checks or [None] * n)]
    row["evidence"] = evidence or [None] * n
    return row


def row_sources(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Each row's source: the top-level column where there is one, else its first turn's."""
    if "source" in table.column_names:
        return table.column("source")
    return pa.array([(t[0]["source"] if t else None) for t in table.column("texts").to_pylist()], pa.string())


def view_metadata(table: pa.Table, features: dict, quality: list[str]) -> dict:
    """The `datasets` features of a view of TABLE (messages, finevision): the view's own, and the
    table's for the quality columns it keeps."""
    try:
        theirs = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    except (TypeError, KeyError, ValueError):
        theirs = {}
    return {b"huggingface": json.dumps({"info": {"features": {**features, **{c: theirs[c] for c in quality
                                                                             if c in theirs}}}}).encode()}


def rows_to_table(rows: list[dict], schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


_IMAGE_BYTES = "images.list.element.bytes"
_TEXT_COLUMNS = [f"texts.list.element.{k}" for k in ("user", "assistant", "source")]
# Image bytes are JPEG/PNG already: compressing them again, dictionary-encoding them or keeping
# min/max statistics of them costs time and buys nothing. Texts get zstd. Data pages of 128 KB
# (about one image each; the default is 1 MB, with rows of several images one page per row group)
# keep the writer's page buffers in the CPU's cache: encoding costs about a fifth less.
WRITE_OPTIONS = {
    "compression": {_IMAGE_BYTES: "none", "images.list.element.path": "zstd", **{c: "zstd" for c in _TEXT_COLUMNS}},
    "use_dictionary": ["images.list.element.path", "texts.list.element.source"],
    "write_statistics": False,
    "data_page_size": 128 << 10,
}


def row_group_rows(table: pa.Table | pa.RecordBatch, target_bytes: int) -> int:
    """Rows per parquet row group so a group holds about target_bytes (the unit readers fetch)."""
    return max(1, min(table.num_rows, int(target_bytes * table.num_rows / max(table.nbytes, 1)))) if table.num_rows else 1


def write_shard(table: pa.Table, path, target_row_group_bytes: int, schema: pa.Schema = SCHEMA) -> None:
    """One Cauldron shard, in row groups of about target_row_group_bytes."""
    pq.write_table(table.cast(schema) if not table.schema.equals(schema) else table, path,
                   row_group_size=row_group_rows(table, target_row_group_bytes), **WRITE_OPTIONS)


def size_category(n: int) -> str:
    """The Hub's size_categories bucket for n rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")):
        if n < limit:
            return name
    return "n>1B" if n >= 1_000_000_000 else "100M<n<1B"


def card_header(license: str, pretty_name: str, rows: int, nbytes: int, tags: list[str], data_files: str,
                features: list[dict] = CARD_FEATURES) -> dict:
    """The YAML header of a Cauldron-schema dataset card: what the Hub reads to show and load it;
    data_files is the pattern of the live version's shards (see docsynth.dataset.versions)."""
    return {
        "license": license,
        "task_categories": ["visual-question-answering", "image-text-to-text"],
        "size_categories": [size_category(rows)],
        "pretty_name": pretty_name,
        "tags": ["docsynth", *tags, "the-cauldron"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_files}]}],
        "dataset_info": {"features": features, "splits": [{"name": "train", "num_examples": rows, "num_bytes": nbytes}]},
    }


def card_front(header: dict) -> str:
    """A dataset card's YAML front matter (what the Hub reads), for the top of README.md."""
    return "---\n" + yaml.safe_dump(header, sort_keys=False).rstrip() + "\n---\n"


_STRINGS = (pa.string(), pa.large_string(), pa.string_view())
_BINARIES = (pa.binary(), pa.large_binary(), pa.binary_view())


def _list_of_struct(t: pa.DataType) -> pa.StructType | None:
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t)) and pa.types.is_struct(t.value_type):
        return t.value_type
    return None


def cauldron_problem(schema: pa.Schema) -> str | None:
    """Why rows of this schema are not Cauldron rows (naming the column), or None if they are."""
    names = schema.names
    for col in ("images", "texts"):
        if col not in names:
            return f"has no column '{col}' (columns: {', '.join(names)})"
    img = _list_of_struct(schema.field("images").type)
    if img is None or img.get_field_index("bytes") < 0 or img.field("bytes").type not in _BINARIES:
        return f"column 'images' is {schema.field('images').type}, not a list of images (list<struct<bytes, path>>)"
    txt = _list_of_struct(schema.field("texts").type)
    if txt is None:
        return f"column 'texts' is {schema.field('texts').type}, not a list of {{user, assistant, source}}"
    for key in ("user", "assistant", "source"):
        if txt.get_field_index(key) < 0:
            return f"column 'texts.{key}' is missing (texts are {schema.field('texts').type})"
        if txt.field(key).type not in _STRINGS:
            return f"column 'texts.{key}' is {txt.field(key).type}, not a string"
    return None


def _a_view(schema: pa.Schema) -> bool:
    """Whether a shard is in the messages or the finevision view."""
    if {"images", "messages"} <= set(schema.names):
        return True
    turn = _list_of_struct(schema.field("texts").type) if {"images", "texts", "source"} <= set(schema.names) else None
    return turn is not None and turn.get_field_index("user") >= 0 and turn.get_field_index("assistant") >= 0


def dataset_shards(path: Path, messages: bool = False) -> list[Path]:
    """The Cauldron shards of a dataset or mixture directory (those its card names, else
    data/*.parquet; in order), or of a run directory's dataset; each checked from its footer, so
    a corrupt or foreign file is an error naming it before anything is read. messages: shards in
    the other views (messages: images, messages; finevision: images, texts of user/assistant,
    source: docsynth.dataset.views) are taken too (push)."""
    for d in (path, path / "dataset"):
        live = live_shards(d)  # what the card names: never a temporary, a part or another version
        files = live if live is not None else sorted(f for f in (d / "data").glob("*.parquet") if not f.name.startswith("."))
        if files:
            rows = 0
            for f in files:
                try:
                    meta = pq.read_metadata(f)
                    schema = meta.schema.to_arrow_schema()
                    why = None if messages and _a_view(schema) else cauldron_problem(schema)
                    rows += meta.num_rows
                except (OSError, pa.ArrowException) as e:
                    why = f"is not a readable parquet file ({str(e).splitlines()[0]})"
                if why:
                    raise DocsynthError(f"{f} {why}: not a shard of a Cauldron-style dataset")
            said = card_rows(d) if live is not None else None
            if said is not None and said != rows:
                raise DocsynthError(f"{d}: its card says {said:,} rows, but its {len(files)} shards hold {rows:,} (a shard "
                                    "is missing, cut short or replaced): write it again, or read the shards as they "
                                    "are from a copy without README.md")
            return files
    raise DocsynthError(f"{path} holds no dataset shards (data/*.parquet, or dataset/data/*.parquet in a run directory)")
