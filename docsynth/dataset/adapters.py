"""From a source's rows to Cauldron rows: adapters for other shapes, turn caps and splits, and
image checks.

Cauldron sources stay in Arrow end to end (no Python object per row). Adapters build rows in
Python: they are for the odd source, and their cost is the images they may have to read from disk.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from docsynth.dataset.cauldron import PER_TURN, SCHEMA, cauldron_problem
from docsynth.dataset.mixquality import carried_columns
from docsynth.dataset.sources import Source, SourceError, as_cauldron
from docsynth.config.mixture import LlavaAdapter, MessagesAdapter, QAAdapter, TurnsConfig

Image.MAX_IMAGE_PIXELS = None  # pages and charts are big; a bomb is caught by the memory it would take, not here


def source_columns(src: Source) -> list[str]:
    """The columns to read (what the rows are made of, what the source's quality filters read, and
    the quality columns carried into the mixture); SourceError (naming the source and the column)
    if the schema does not fit."""
    return list(dict.fromkeys(_content_columns(src) + _quality_columns(src) + carried_columns(src)))


def _quality_columns(src: Source) -> list[str]:
    """The per-turn columns the source's min_rating and verified read (docsynth.dataset.cauldron)."""
    want = [f"{axis}_ratings" for axis in src.cfg.min_rating] + (["verified"] if src.cfg.verified else [])
    for c in want:
        if c not in src.schema.names:
            raise SourceError(f"source '{src.name}': its {'verified' if c == 'verified' else 'min_rating'} filter "
                              f"reads a column '{c}', which the source does not have "
                              f"(columns: {', '.join(src.schema.names)})")
        t = src.schema.field(c).type
        if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not (
                pa.types.is_integer(t.value_type) if c != "verified" else pa.types.is_boolean(t.value_type)):
            raise SourceError(f"source '{src.name}': column '{c}' is {t}, not a list of "
                              f"{'bool' if c == 'verified' else 'integers'} (one per turn)")
    return want


def quality_keep(src: Source, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    """For each of the source's quality filters, the rows of the batch it leaves out (a row is the
    unit here: one turn under the floor, or one that disagreed, leaves its row out); {} without."""
    out = {}
    for axis, floor in src.cfg.min_rating.items():
        out[f"min_rating {axis}"] = _rows_where(batch.column(f"{axis}_ratings"), lambda v, floor=floor: pc.less(v, floor))
    if src.cfg.verified:
        out["verified"] = _rows_where(batch.column("verified"), lambda v: pc.invert(v))
    return out


def _rows_where(col: pa.Array, test) -> np.ndarray:
    """Rows with an element for which test is true (nulls: false)."""
    flat = pc.list_flatten(col)
    hit = pc.fill_null(test(flat), False).to_numpy(zero_copy_only=False)
    rows = np.zeros(len(col), dtype=bool)
    rows[pc.list_parent_indices(col).to_numpy(zero_copy_only=False)[hit]] = True
    return rows


def _content_columns(src: Source) -> list[str]:
    a = src.cfg.adapter
    if a is None:
        why = cauldron_problem(src.schema)
        if why:
            raise SourceError(f"source '{src.name}' is not in the Cauldron schema: {why}. Add an `adapter:` "
                              "to the source (kind: qa, llava or messages) to read it.")
        return ["images", "texts"]
    cols = {QAAdapter: ("image", "question", "answer"), LlavaAdapter: ("image", "conversations"),
            MessagesAdapter: ("messages", "images")}[type(a)]
    names = [getattr(a, c) for c in cols]
    for c, n in zip(cols, names):
        if n not in src.schema.names:
            raise SourceError(f"source '{src.name}': the {a.kind} adapter's {c} column '{n}' is not in the source "
                              f"(columns: {', '.join(src.schema.names)})")
    return names


def to_cauldron(src: Source, batch: pa.RecordBatch, images: bool = True) -> pa.RecordBatch:
    """The batch as Cauldron rows; without images the image lists are left empty (for counting turns)."""
    a = src.cfg.adapter
    if a is None:
        return as_cauldron(batch)
    root = Path(a.image_root) if a.image_root else src.root
    rows = batch.to_pylist()
    out = []
    for r in rows:
        if isinstance(a, QAAdapter):
            pics, texts = r[a.image], _qa_turns(r[a.question], r[a.answer], a.answers)
        elif isinstance(a, LlavaAdapter):
            pics, texts = r[a.image], _llava_turns(r[a.conversations] or [])
        else:
            pics, texts = r[a.images], _message_turns(r[a.messages] or [])
        out.append({"images": _images(pics, root) if images else [],
                    "texts": [{"user": u, "assistant": v, "source": src.name} for u, v in texts]})
    return pa.RecordBatch.from_pylist(out, schema=SCHEMA)


def _answer(ans, policy: str) -> str:
    if not isinstance(ans, list):
        return "" if ans is None else str(ans)
    ans = [str(x) for x in ans if x is not None]
    if not ans:
        return ""
    if policy == "most_common":
        return Counter(ans).most_common(1)[0][0]
    return "; ".join(dict.fromkeys(ans)) if policy == "join" else ans[0]


def _qa_turns(q, ans, policy: str) -> list[tuple[str, str]]:
    if isinstance(q, list):  # several questions about the image, each with its answer(s)
        ans = ans if isinstance(ans, list) and len(ans) == len(q) else [ans] * len(q)
        return [(str(x), _answer(y, policy)) for x, y in zip(q, ans) if x]
    return [(str(q), _answer(ans, policy))] if q else []


def _strip_image_tag(s: str) -> str:
    return s.replace("<image>", "").strip()


def _llava_turns(conv: list[dict]) -> list[tuple[str, str]]:
    turns, user = [], None
    for m in conv:
        who = (m.get("from") or m.get("role") or "").lower()
        text = _strip_image_tag(str(m.get("value") or m.get("content") or ""))
        if who in ("human", "user"):
            user = text
        elif who in ("gpt", "assistant") and user is not None:
            turns.append((user, text))
            user = None
    return turns


def _content_text(content) -> str:
    if isinstance(content, str):
        return _strip_image_tag(content)
    return " ".join(p.get("text") or "" for p in content or [] if p.get("type") == "text").strip()


def _message_turns(msgs: list[dict]) -> list[tuple[str, str]]:
    turns, user = [], None
    for m in msgs:
        role = m.get("role")
        if role == "user":
            user = _content_text(m.get("content"))
        elif role == "assistant" and user is not None:
            turns.append((user, _content_text(m.get("content"))))
            user = None
    return turns


def _images(value, root: Path) -> list[dict]:
    """Images as {bytes, path}: from datasets' Image structs, raw bytes, or paths (read from disk,
    inside the image root only: a row naming /etc/passwd or ../../key reads nothing; a missing or
    refused file leaves bytes None, which the image check reports)."""
    vals = value if isinstance(value, list) else [] if value is None else [value]
    root = root.resolve()
    out = []
    for v in vals:
        if isinstance(v, dict):
            b, path = v.get("bytes"), v.get("path")
        elif isinstance(v, (bytes, bytearray)):
            b, path = bytes(v), None
        else:
            b, path = None, str(v)
        if b is None and path:
            target = (root / path).resolve()  # an absolute path stays itself
            try:
                b = target.read_bytes() if root in target.parents else None
            except OSError:
                b = None
        out.append({"bytes": b, "path": path if b is None else None})
    return out


def cap_and_split(batch: pa.RecordBatch, turns: TurnsConfig) -> pa.RecordBatch:
    """Keep the first turns.max turns of each row, then cut rows into pieces of turns.split turns
    (pieces keep the row's images and other row-level columns; a row with no turn left is dropped
    when splitting). The per-turn quality columns (PER_TURN, one value per turn: see
    docsynth.dataset.mixquality) are cut with `texts`."""
    if turns.max is None and turns.split is None:
        return batch
    per_turn = [i for i, f in enumerate(batch.schema)  # a column the source has not (all null) goes by row
                if f.name == "texts" or (f.name in PER_TURN and batch.column(i).null_count < batch.num_rows)]
    cols = list(batch.columns)
    if turns.max is not None:
        for i in per_turn:
            cols[i] = pc.list_slice(cols[i], 0, turns.max)
    if turns.split is None:
        return pa.RecordBatch.from_arrays(cols, schema=batch.schema)
    texts = cols[batch.schema.get_field_index("texts")]
    lengths = pc.list_value_length(texts).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    pieces = -(-lengths // turns.split)
    row = np.repeat(np.arange(len(lengths)), pieces)
    first_piece = np.repeat(np.cumsum(pieces) - pieces, pieces)
    starts = np.concatenate([[0], np.cumsum(lengths)])[:-1]
    piece_start = starts[row] + (np.arange(len(row)) - first_piece) * turns.split
    take = pa.array(row)
    for i, f in enumerate(batch.schema):
        if i in per_turn:
            flat = cols[i].flatten()
            offsets = pa.array(np.append(piece_start, len(flat)).astype(np.int32))
            cols[i] = pa.ListArray.from_arrays(offsets, flat, type=f.type)
        else:
            cols[i] = cols[i].take(take)
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema)


def piece_counts(batch: pa.RecordBatch, turns: TurnsConfig) -> np.ndarray:
    """How many output rows each row becomes (1 each, unless turns.split is set)."""
    if turns.split is None:
        return np.ones(batch.num_rows, dtype=np.int64)
    texts = batch.column("texts")
    lengths = pc.list_value_length(texts).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if turns.max is not None:
        lengths = np.minimum(lengths, turns.max)
    return -(-lengths // turns.split)


def image_problem(data: bytes | memoryview | None, mode: str) -> str | None:
    """Why these bytes are not a usable image, or None. `header`: the header parses, and JPEG/PNG
    data is not truncated (end markers present); `decode`: the whole image decodes."""
    if data is None:
        return "no image bytes (and no readable path)"
    if len(data) == 0:
        return "empty image"
    try:
        with Image.open(io.BytesIO(data)) as im:
            if mode == "decode":
                im.load()
            elif im.format == "JPEG" and bytes(data[-2:]) != b"\xff\xd9" and b"\xff\xd9" not in bytes(data[-64:]):
                return "truncated JPEG (no end-of-image marker)"
            elif im.format == "PNG" and b"IEND" not in bytes(data[-16:]):
                return "truncated PNG (no IEND chunk)"
    except Exception as e:  # PIL raises many kinds for bad data
        return f"not a readable image: {type(e).__name__}: {str(e).split(' <_io.')[0][:120]}"
    return None


def broken_rows(batch: pa.RecordBatch, mode: str, rows: np.ndarray | None = None) -> dict[int, str]:
    """Rows of a Cauldron batch (of those in `rows`, default all) that hold a broken image, with
    the first reason for each."""
    if mode == "none":
        return {}
    images = batch.column("images")
    lengths = pc.list_value_length(images).fill_null(0).to_numpy(zero_copy_only=False)
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    flat = images.flatten().field("bytes")
    if mode == "header":  # JPEG and PNG with their end markers pass here, in Arrow; the rest goes to PIL
        sure = pc.or_(pc.and_(pc.equal(pc.binary_slice(flat, 0, 3), pa.scalar(b"\xff\xd8\xff", flat.type)),
                              pc.equal(pc.binary_slice(flat, -2), pa.scalar(b"\xff\xd9", flat.type))),
                      pc.and_(pc.equal(pc.binary_slice(flat, 0, 8), pa.scalar(b"\x89PNG\r\n\x1a\n", flat.type)),
                              pc.equal(pc.binary_slice(flat, -8, -4), pa.scalar(b"IEND", flat.type))))
        check = np.flatnonzero(~sure.fill_null(False).to_numpy(zero_copy_only=False))
    else:
        check = np.arange(len(flat))
    if rows is not None:
        check = check[np.isin(row_of[check], rows)]
    bad: dict[int, str] = {}
    for i in check.tolist():
        r = int(row_of[i])
        if r in bad:
            continue
        value = flat[i]
        buf = value.as_buffer() if value.is_valid else None
        why = image_problem(memoryview(buf) if buf is not None else None, mode)
        if why:
            bad[r] = why
    return bad
