"""Dataset statistics, streamed over Cauldron shards in bounded memory: counts, per-source shares,
and binned distributions (question and answer length, turns and images per sample, image sizes,
tokens when a tokenizer is given). The same figures go to `docsynth stats` and the dataset cards.
"""

from __future__ import annotations

import io
import json
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from docsynth.dataset.rowcheck import RowCheck
from docsynth.dataset.versions import MARKER
from docsynth.dataset.cauldron import dataset_shards
from docsynth.core.errors import DocsynthError
from docsynth.core.records import reject_counts
from docsynth.core.torchlibs import set_aside_broken

LENGTH_EDGES = [0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]  # characters; the last bin is open
SIDE_EDGES = [0, 256, 512, 768, 1024, 1536, 2048, 3072, 4096]  # pixels, the image's longer side


def image_size(b: bytes | memoryview) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF or a PNG's IHDR without decoding or copying the bytes
    (headers are looked for in the first 64 KB); PIL for other formats."""
    mv = memoryview(b).cast("B")  # pyarrow buffers export signed bytes
    if mv[:8] == b"\x89PNG\r\n\x1a\n" and len(mv) >= 24:
        return struct.unpack_from(">II", mv, 16)
    if mv[:2] == b"\xff\xd8":
        i, end = 2, min(len(mv), 65536)
        while i + 9 < end:
            if mv[i] != 0xFF:
                i += 1
                continue
            marker = mv[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack_from(">HH", mv, i + 5)
                return w, h
            i += 2 + struct.unpack_from(">H", mv, i + 2)[0]
    try:
        from PIL import Image
        with Image.open(io.BytesIO(mv)) as im:
            return im.size
    except Exception:  # not an image PIL knows
        return None


def _binary_views(arr: pa.Array | pa.ChunkedArray) -> list[memoryview | None]:
    """The values of a binary array as memoryviews of its data buffers (None for nulls): no copies,
    no pyarrow scalars."""
    if isinstance(arr, pa.ChunkedArray):
        return [v for c in arr.chunks for v in _binary_views(c)]
    if len(arr) == 0:
        return []
    _, offsets, data = arr.buffers()[:3]
    off = np.frombuffer(offsets, dtype=np.int64 if pa.types.is_large_binary(arr.type) else np.int32)[arr.offset:arr.offset + len(arr) + 1]
    mv = memoryview(data) if data is not None else memoryview(b"")
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    return [mv[a:b] if valid is None or valid[i] else None for i, (a, b) in enumerate(zip(off[:-1].tolist(), off[1:].tolist()))]


@dataclass(slots=True)
class Histogram:
    """Counts in fixed bins (edges[i] <= x < edges[i+1]; the last bin is open), with exact sum/min/max."""

    edges: list[int]
    counts: list[int] = field(default_factory=list)
    n: int = 0
    total: float = 0.0
    min: float | None = None
    max: float | None = None

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        if not self.counts:
            self.counts = [0] * len(self.edges)
        idx = np.searchsorted(np.array(self.edges), values, side="right") - 1
        for i, c in zip(*np.unique(idx, return_counts=True)):
            self.counts[int(i)] += int(c)
        self.n += len(values)
        self.total += float(values.sum())
        lo, hi = float(values.min()), float(values.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def labels(self) -> list[str]:
        return [f"{a}-{b - 1}" for a, b in zip(self.edges, self.edges[1:])] + [f">={self.edges[-1]}"]


@dataclass(slots=True)
class Stats:
    samples: int = 0
    images: int = 0
    pairs: int = 0
    bytes: int = 0
    tokens: int | None = None
    sources: dict[str, int] = field(default_factory=dict)  # samples by source (the first word of texts[0].source)
    turns: dict[int, int] = field(default_factory=dict)  # samples by QA turns
    images_per_sample: dict[int, int] = field(default_factory=dict)
    question_chars: Histogram = field(default_factory=lambda: Histogram(LENGTH_EDGES))
    answer_chars: Histogram = field(default_factory=lambda: Histogram(LENGTH_EDGES))
    image_side: Histogram = field(default_factory=lambda: Histogram(SIDE_EDGES))
    unreadable_images: int = 0
    unusable_rows: int = 0  # rows a loader cannot use (docsynth.dataset.rowcheck)
    unusable: list[str] = field(default_factory=list)  # the first of them: "SHARD row N: why"
    rejects: dict[str, dict[str, int]] = field(default_factory=dict)  # a run's drops: stage -> reason -> count
    quality: dict = field(default_factory=dict)  # round-trip verification, as docsynth write recorded it

    def to_dict(self) -> dict:
        return asdict(self)


class StatsAccumulator:
    """Adds Cauldron tables (or batches) to a Stats, a group at a time."""

    def __init__(self, tokenizer: Callable[[list[str]], list[int]] | None = None) -> None:
        self.s = Stats(tokens=0 if tokenizer else None)
        self.tokenizer = tokenizer
        self._sources: Counter[str] = Counter()
        self._turns: Counter[int] = Counter()
        self._images: Counter[int] = Counter()

    def add(self, table: pa.Table | pa.RecordBatch, rows: np.ndarray | None = None) -> None:
        """Count the table's rows; with `rows` (indices, repeats allowed), those rows of it, as if
        taken, without copying anything (`bytes` then counts their values: image and text bytes)."""
        s = self.s
        texts, images = _array(table.column("texts")), _array(table.column("images"))  # image bytes are not copied
        turns = pc.list_value_length(texts).fill_null(0).to_numpy(zero_copy_only=False)
        pics = pc.list_value_length(images).fill_null(0).to_numpy(zero_copy_only=False)
        w = np.ones(len(turns), np.int64) if rows is None else np.bincount(rows, minlength=len(turns))
        row_turns, row_pics = (turns, pics) if rows is None else (turns[rows], pics[rows])
        s.samples += len(row_turns)
        self._turns.update(row_turns.tolist())
        self._images.update(row_pics.tolist())
        s.pairs += int(row_turns.sum())
        s.images += int(row_pics.sum())
        flat = pc.list_flatten(texts)  # null lists give no turns, as their length 0 says
        per_pair = np.repeat(w, turns)
        questions, answers = pc.struct_field(flat, "user"), pc.struct_field(flat, "assistant")
        s.question_chars.add(np.repeat(pc.utf8_length(questions).fill_null(0).to_numpy(zero_copy_only=False), per_pair))
        s.answer_chars.add(np.repeat(pc.utf8_length(answers).fill_null(0).to_numpy(zero_copy_only=False), per_pair))
        first = pc.struct_field(pc.list_flatten(pc.list_slice(texts, 0, 1)), "source").fill_null("")  # rows with turns
        keys = pc.dictionary_encode(pc.replace_substring_regex(first, r"\s.*$", "", max_replacements=1))  # "docsynth:x doc:..." -> "docsynth:x"
        counts = np.bincount(keys.indices.to_numpy(zero_copy_only=False), weights=w[turns > 0], minlength=len(keys.dictionary))
        for k, c in zip(keys.dictionary.to_pylist(), counts.tolist()):
            if c:
                self._sources[k] += int(c)
        if (row_turns == 0).any():
            self._sources["(no turns)"] += int((row_turns == 0).sum())
        image_bytes = pc.struct_field(pc.list_flatten(images), "bytes")
        per_image = np.repeat(w, pics)
        sides, times = [], []
        for v, k in zip(_binary_views(image_bytes), per_image.tolist()):
            if not k:
                continue
            size = image_size(v) if v is not None else None
            if size is None:
                s.unreadable_images += k
            else:
                sides.append(max(size))
                times.append(k)
        s.image_side.add(np.repeat(np.array(sides, dtype=np.int64), times))
        if rows is None:
            s.bytes += table.nbytes
        else:
            lengths = [image_bytes] + [pc.struct_field(flat, f) for f in ("user", "assistant", "source")]
            s.bytes += sum(int(np.dot(pc.binary_length(x).fill_null(0).to_numpy(zero_copy_only=False), k))
                           for x, k in zip(lengths, [per_image, per_pair, per_pair, per_pair]))
        if self.tokenizer is not None:
            counts = np.array(self.tokenizer(questions.to_pylist() + answers.to_pylist()), np.int64)
            s.tokens += int(np.dot(counts, np.r_[per_pair, per_pair]))

    def result(self) -> Stats:
        s = self.s
        s.sources = dict(sorted(self._sources.items(), key=lambda kv: (-kv[1], kv[0])))  # ties in a fixed order
        s.turns = dict(sorted(self._turns.items()))
        s.images_per_sample = dict(sorted(self._images.items()))
        return s


def _array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return (col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)) if isinstance(col, pa.ChunkedArray) else col


def dataset_stats(path: Path, tokenizer: Callable[[list[str]], list[int]] | None = None) -> Stats:
    """Statistics of a dataset, mixture or run directory, streamed a row group at a time."""
    acc = StatsAccumulator(tokenizer)
    check = RowCheck()
    for shard in dataset_shards(path):
        pf, first = pq.ParquetFile(shard), 0
        for g in range(pf.num_row_groups):
            group = pf.read_row_group(g, columns=["images", "texts"])
            acc.add(group)
            check.check(shard, first, group)
            first += group.num_rows
    s = acc.result()
    s.unusable_rows, s.unusable = check.count, check.named
    s.rejects = reject_counts(path)
    s.quality = _quality(path)
    return s


def _quality(path: Path) -> dict:
    """The Quality figures docsynth write recorded beside a dataset (its marker), or {}."""
    for marker in (path / MARKER, path / "dataset" / MARKER):
        try:
            return json.loads(marker.read_text())["summary"].get("quality", {})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return {}


def load_tokenizer(name: str) -> Callable[[list[str]], list[int]]:
    """Token counts per text with a Hugging Face tokenizer (a local folder or a cached Hub id)."""
    set_aside_broken()
    try:
        from transformers import AutoTokenizer
    except ImportError as e:
        raise DocsynthError("--tokenizer needs transformers (pip install transformers)") from e
    try:
        tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:  # transformers raises many kinds for a missing or broken tokenizer
        raise DocsynthError(f"cannot load tokenizer '{name}': {str(e).splitlines()[0]}") from None
    return lambda texts: [len(x) for x in tok([t or "" for t in texts], add_special_tokens=False)["input_ids"]]


def stats_markdown(s: Stats) -> str:
    """The statistics as a card section."""
    lines = ["## Statistics", "",
             f"{s.samples:,} samples, {s.images:,} images, {s.pairs:,} QA pairs"
             + (f", {s.tokens:,} tokens" if s.tokens is not None else "") + ".", ""]
    if s.sources:
        lines += ["| source | samples | share |", "| --- | ---: | ---: |"]
        lines += [f"| {k or '(none)'} | {v:,} | {100 * v / max(s.samples, 1):.2f}% |" for k, v in list(s.sources.items())[:60]]
        lines.append("")
    for title, h in (("question length (characters)", s.question_chars), ("answer length (characters)", s.answer_chars),
                     ("image size (longer side, pixels)", s.image_side)):
        if not h.n:
            continue
        lines += [f"{title}: mean {h.mean:,.1f}, min {h.min:,.0f}, max {h.max:,.0f}", "",
                  "| " + " | ".join(h.labels()) + " |", "|" + " ---: |" * len(h.labels()),
                  "| " + " | ".join(f"{c:,}" for c in h.counts) + " |", ""]
    for title, d in (("QA turns per sample", s.turns), ("images per sample", s.images_per_sample)):
        lines += [f"{title}: " + ", ".join(f"{k}: {v:,}" for k, v in d.items()), ""]
    return "\n".join(lines)
