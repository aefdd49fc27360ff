"""Intermediate records passed between stages, and their parquet schemas."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields

from pathlib import Path

import pyarrow as pa

from docsynth.core.rundir import REJECT_FILES


@dataclass(slots=True)
class Page:
    """One rendered page with its text; the output record of ingest."""

    doc_id: str
    source: str  # the input path, "path#row" for a row of a parquet input, "path#member" for a tar member
    page: int  # 0-based page index within the document
    num_pages: int
    image: bytes
    image_format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    dpi: float  # effective dpi after the pixel cap
    text: str
    text_source: str  # "layer" | "ocr" | "none"
    ocr_confidence: float | None  # mean tesseract word confidence (0-100), OCR pages only
    phash: int | None = None  # the rendered pixels' 64-bit perceptual hash (docsynth.hashing.phash.pixels_hash)
    phash_fine: bytes | None = None  # their 256-bit one (32 bytes)
    meta: str | None = None  # provenance: a tar member's KEY.json sidecar (compact JSON), else null
    reader: str | None = None  # what ordered a text layer: "geometry" | "model" (ingest.layout); null for OCR


PAGE_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("page", pa.int32()), ("num_pages", pa.int32()),
    ("image", pa.binary()), ("image_format", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("dpi", pa.float32()), ("text", pa.string()), ("text_source", pa.string()),
    ("ocr_confidence", pa.float32()), ("phash", pa.uint64()), ("phash_fine", pa.binary(32)),
    ("meta", pa.string()), ("reader", pa.string()),
])
assert [f.name for f in fields(Page)] == PAGE_SCHEMA.names


@dataclass(slots=True)
class Reject:
    """A file or page that could not be processed, and why."""

    stage: str
    source: str
    doc_id: str | None
    page: int | None
    reason: str
    raw: str | None = None  # the model's text, for a completion that could not be used

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["raw"] is None:
            del d["raw"]
        return d


def to_table(rows: list, schema: pa.Schema) -> pa.Table:
    """Columnar table of dataclass records whose fields are the schema's columns."""
    return pa.table({name: [getattr(r, name) for r in rows] for name in schema.names}, schema=schema)


def write_in_groups(writer, rows: Iterable, schema: pa.Schema, group: int) -> None:
    """Write records to a parquet writer, `group` rows per row group: memory stays bounded by a group."""
    buf: list = []
    for row in rows:
        buf.append(row)
        if len(buf) >= group:
            writer.write_table(to_table(buf, schema))
            buf.clear()
    if buf:
        writer.write_table(to_table(buf, schema))


def pages_to_table(pages: list[Page]) -> pa.Table:
    return to_table(pages, PAGE_SCHEMA)


@dataclass(slots=True)
class Candidate:
    """One generated sample before filtering: its pages, QA pairs and provenance."""

    sample_id: str  # "doc_id:first-last" (0-based pages)
    doc_id: str
    source: str
    pages: list[int]
    images: list[bytes]
    image_format: str
    text: str  # the document text the model was given (after truncation)
    truncated: bool  # the text was cut to fit the context budget
    questions: list[str]
    answers: list[str]
    template: str
    model: str
    backend: str
    sampling: str  # JSON of the sampling settings
    seeds: list[int]  # of the completions of the last attempt (generate.completions_per_sample)
    attempts: int
    finish_reasons: list[str | None]
    prompt_tokens: int
    output_tokens: int
    raw_outputs: list[str]  # the model's texts, verbatim
    evidence: list[dict | None]  # per pair: answer-first's span (EVIDENCE), None for a model-first pair


# Where an answer-first pair's answer stands (docsynth.core.spans.Evidence): the page, its offsets
# in the sample's text, its kind and key, and its text.
EVIDENCE = pa.struct([("page", pa.int32()), ("start", pa.int32()), ("end", pa.int32()), ("kind", pa.string()),
                      ("key", pa.string()), ("text", pa.string())])

CANDIDATE_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("doc_id", pa.string()), ("source", pa.string()), ("pages", pa.list_(pa.int32())),
    ("images", pa.list_(pa.binary())), ("image_format", pa.string()), ("text", pa.string()),
    ("truncated", pa.bool_()), ("questions", pa.list_(pa.string())), ("answers", pa.list_(pa.string())),
    ("template", pa.string()), ("model", pa.string()), ("backend", pa.string()), ("sampling", pa.string()),
    ("seeds", pa.list_(pa.int64())), ("attempts", pa.int32()), ("finish_reasons", pa.list_(pa.string())),
    ("prompt_tokens", pa.int32()), ("output_tokens", pa.int32()), ("raw_outputs", pa.list_(pa.string())),
    ("evidence", pa.list_(EVIDENCE)),
])
assert [f.name for f in fields(Candidate)] == CANDIDATE_SCHEMA.names


# Per-turn rating axes of the output, in FineVision's names (relevance, formatting,
# visual_dependency, image_correspondence: what nanoVLM's *_min_rating options read), plus
# correctness, which FineVision has no column for. Every judge fills JUDGED_AXES; one that sees
# the page images (verify.vision) fills VISUAL_AXES too, which otherwise stay null.
RATING_AXES = ("relevance", "formatting", "visual_dependency", "image_correspondence", "correctness")
JUDGED_AXES = ("relevance", "correctness", "formatting")
VISUAL_AXES = ("visual_dependency", "image_correspondence")
RATED_AXES = JUDGED_AXES + VISUAL_AXES  # what a verdict holds


@dataclass(slots=True)
class Verdicts:
    """The verify stage's round trip and ratings for one candidate sample: per pair, in the
    candidate's order, the verifier's own answer and whether it agrees (None: not checked), and
    the judge's scores and reason (None: not rated)."""

    sample_id: str
    template: str
    reanswers: list[str | None]
    verified: list[bool | None]
    how: list[str]  # the agreement rule that decided (docsynth.core.agree), or why unchecked
    reasons: list[str]
    model: str
    prompt_tokens: int  # of the round trip and the judge together
    output_tokens: int
    raw_output: str  # the verifier's text, verbatim
    relevance: list[int | None]
    correctness: list[int | None]
    formatting: list[int | None]
    visual_dependency: list[int | None]
    image_correspondence: list[int | None]
    judge_reasons: list[str | None]
    judge_raw: str  # the judge's text, verbatim ("" where no judge ran)
    checks: list[dict]  # per pair: each check's verdict (CHECKS; None: not run or not applicable)


# The verify stage's checks (recipe verify.checks), each pair's verdict of each.
CHECK_NAMES = ("evidence", "type", "choice", "vote", "round_trip")
CHECKS = pa.struct([(c, pa.bool_()) for c in CHECK_NAMES])


VERDICT_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("template", pa.string()), ("reanswers", pa.list_(pa.string())),
    ("verified", pa.list_(pa.bool_())), ("how", pa.list_(pa.string())), ("reasons", pa.list_(pa.string())),
    ("model", pa.string()), ("prompt_tokens", pa.int32()), ("output_tokens", pa.int32()), ("raw_output", pa.string()),
    ("relevance", pa.list_(pa.int8())), ("correctness", pa.list_(pa.int8())), ("formatting", pa.list_(pa.int8())),
    ("visual_dependency", pa.list_(pa.int8())), ("image_correspondence", pa.list_(pa.int8())), ("judge_reasons", pa.list_(pa.string())), ("judge_raw", pa.string()),
    ("checks", pa.list_(CHECKS)),
])
assert [f.name for f in fields(Verdicts)] == VERDICT_SCHEMA.names


# Every stage's rejects, in a run directory (ingest writes the first, generate and write the others).


def reason_kind(reason: str) -> str:
    """What runs count a reject by: its reason's head, before ":" (a filter's name, "corrupt PDF")."""
    return reason.split(":")[0]


def write_rejects(path: Path, records: Iterable[dict]) -> Counter[str]:
    """A rejects file (JSON lines), streamed: the records are read one at a time from the
    stages' markers, never gathered. Returns their counts by reason kind."""
    from docsynth.core.files import atomic_write

    kinds: Counter[str] = Counter()

    def write(tmp: Path) -> None:
        with tmp.open("w") as f:
            for r in records:
                kinds[reason_kind(r["reason"])] += 1
                f.write(json.dumps(r, sort_keys=True) + "\n")

    atomic_write(path, write)
    return kinds


def reject_counts(run: Path, stages: Iterable[str] = REJECT_FILES) -> dict[str, dict[str, int]]:
    """A run directory's rejects by stage and reason kind, most common first ({} where it has none)."""
    counts: dict[str, Counter[str]] = {s: Counter() for s in stages if (run / REJECT_FILES[s]).exists()}
    for stage, r in read_rejects(run, list(counts)):
        counts[stage][reason_kind(r.get("reason", "?"))] += 1
    return {stage: dict(c.most_common()) for stage, c in counts.items()}


def read_rejects(run: Path, stages: Iterable[str] = REJECT_FILES) -> Iterator[tuple[str, dict]]:
    """(stage, reject) for every reject of these stages that the run directory has."""
    for stage in stages:
        f = run / REJECT_FILES[stage]
        if f.exists():
            for line in f.read_text().splitlines():
                if line.strip():
                    yield stage, json.loads(line)
