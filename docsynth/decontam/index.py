"""Decontamination: finding the samples and pairs that copy an evaluation set.

The evaluation sets are read through the mixer's source layer and adapters (any Cauldron-style
dataset, parquet folder, save_to_disk folder, or a DocVQA-style image/question/answers table with
a `qa` adapter), hashed once (docsynth.decontam.hashes) and indexed: images by 64-bit pHash in a
multi-index Hamming table (docsynth.hashing.hamming), questions and question + answer by word
n-grams (docsynth.hashing.ngrams). Every set is opened, and its schema checked, before anything is
hashed: a bad set stops the run before any work.

A hit on a page image marks the whole sample; a hit on a question marks that turn.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from docsynth.core.summary import Summary
from docsynth.config.adapters import QAAdapter
from docsynth.config.decontam import DecontamConfig, EvalSet
from docsynth.core.errors import DocsynthError
from docsynth.hashing.hamming import HammingIndex
from docsynth.config.mixture import SourceConfig
from docsynth.hashing.ngrams import TextIndex
from docsynth.hashing.phash import fine_distances
from docsynth.core.remote import shown
from docsynth.dataset.adapters import source_columns, to_cauldron
from docsynth.dataset.cauldron import cauldron_problem
from docsynth.decontam.hashes import HashCache, RowHashes, file_key
from docsynth.dataset.sources import Source, SourceError, open_source

log = logging.getLogger(__name__)

REPORT = "decontamination.jsonl"
MAX_IMAGE_HITS = 20  # reported per image and evaluation set, the closest first (a set can hold many copies of a page)


class DecontamError(DocsynthError):
    """An evaluation set that cannot be used; the message names it."""


@dataclass(slots=True)
class Hit:
    row: int  # the checked row (a sample)
    turn: int | None  # None: an image hit, which marks the whole row
    eval_set: str
    eval_id: int  # the evaluation set's row, counted over its files in order
    kind: str  # image | question | question_answer
    distance: int | None = None  # bits of the 256-bit hash, for images
    overlap: float | None = None  # share of n-grams, for text

    def record(self, sample: object) -> dict:
        r = {"sample": sample, "turn": self.turn, "eval_set": self.eval_set, "eval_id": self.eval_id, "kind": self.kind}
        r.update({"distance": self.distance} if self.kind == "image" else {"overlap": self.overlap})
        return r


def source_rows(src: Source, columns: list[str], images: bool = True, units: list | None = None):
    """(row, image bytes, [(question, answer)]) for every row of a source (or of its units), in order."""
    for start, batch in src.read(src.units if units is None else units, columns):
        for i, r in enumerate(to_cauldron(src, batch, images=images).to_pylist()):
            yield (start + i, [im["bytes"] for im in r["images"] or []],
                   [(t["user"], t["assistant"]) for t in r["texts"] or []])


def hash_source(src: Source, columns: list[str], cache: HashCache, images: bool,
                progress: Callable[[str], None] | None = None) -> list[tuple[Path, RowHashes, int]]:
    """Each file of a source with its hashes (rows counted from the file's first) and its first
    row in the source; kept in the cache by the file's path, size and modification time."""
    out = []
    for fi, path in enumerate(src.files):
        units = [u for u in src.units if u.file == fi]
        first = units[0].start if units else 0
        if progress:
            progress(f"hashing {src.name}: {path.name}")
        adapter = src.cfg.adapter.model_dump(mode="json") if src.cfg.adapter else None
        rows = lambda units=units, first=first: ((r - first, im, t) for r, im, t in  # noqa: E731
                                                 source_rows(src, columns, images, units))
        out.append((path, cache.get(["rows", file_key(path), adapter], rows, images), first))
    return out


def open_eval_set(e: EvalSet) -> tuple[Source, list[str]]:
    cfg = SourceConfig(name=e.name, path=e.path, config=e.config, split=e.split, adapter=e.adapter, repeat=1)
    try:
        src = open_source(cfg)
        return src, source_columns(src)
    except SourceError as err:
        raise DecontamError(str(err).replace(f"source '{e.name}'", f"evaluation set '{e.name}'", 1)) from None


def guess_adapter(e: EvalSet) -> EvalSet:
    """A set named on the command line with no adapter: if it is not in the Cauldron schema but
    has an image, a question and an answer(s) column (DocVQA, ChartQA, InfoVQA as released), read
    it with a qa adapter."""
    if e.adapter is not None:
        return e
    try:
        src = open_source(SourceConfig(name=e.name, path=e.path, config=e.config, split=e.split, repeat=1))
    except SourceError:
        return e  # open_eval_set says what is wrong
    names = set(src.schema.names)
    if cauldron_problem(src.schema) is None or "question" not in names:
        return e
    image = next((c for c in ("image", "images") if c in names), None)
    answer = next((c for c in ("answers", "answer") if c in names), None)
    if image is None or answer is None:
        return e
    return e.model_copy(update={"adapter": QAAdapter(image=image, question="question", answer=answer)})


@dataclass(slots=True)
class SetInfo:
    name: str
    path: str
    rows: int
    images: int
    questions: int
    unreadable_images: int
    unreadable_rows: list[int]  # the first of the rows holding them (docsynth.decontam.hashes.BAD_ROWS)


def _check_usable(e: EvalSet, rows: int, rh: RowHashes, images: bool) -> None:
    """DecontamError for a set with nothing to compare against (no rows; no image that decodes
    and no question); a warning naming the rows of images that do not decode."""
    where = f"evaluation set '{e.name}' ({shown(str(e.path))})"
    if rows == 0:
        raise DecontamError(f"{where} has no rows: nothing to decontaminate against (a wrong split or config?)")
    if rh.unreadable:
        rows_named = ", ".join(map(str, rh.unreadable_rows.tolist())) + (", ..." if rh.unreadable > len(rh.unreadable_rows) else "")
        log.warning("%s: %d images do not decode (rows %s); they are not compared", where, rh.unreadable, rows_named)
    if (not images or not len(rh.img)) and not len(rh.turn_row):
        why = f"none of its {rh.unreadable:,} images decodes" if rh.unreadable else "it has no image"
        raise DecontamError(f"{where} has nothing to compare: {why}{' (images off)' if not images else ''}, "
                            "and no question")


class EvalIndex:
    """The evaluation sets of a decontaminate section, hashed (kept in cache_dir) and indexed."""

    def __init__(self, cfg: DecontamConfig, cache_dir: Path, progress: Callable[[str], None] | None = None) -> None:
        self.cfg = cfg
        opened = [(e, *open_eval_set(e)) for e in cfg.against]  # every set checked before any hashing
        cache = HashCache(cache_dir, cfg.text.ngram)
        self.sets: list[SetInfo] = []
        self.files = [[file_key(f) for f in src.files] for _, src, _ in opened]  # what the hashes depend on
        parts: list[tuple[int, RowHashes]] = []
        for k, (e, src, cols) in enumerate(opened):
            if progress:
                progress(f"hashing evaluation set '{e.name}' ({src.num_rows:,} rows)")
            key = ["eval", [file_key(f) for f in src.files], e.model_dump(mode="json", exclude={"name"})]
            try:
                rh = cache.get(key, lambda src=src, cols=cols: source_rows(src, cols), cfg.images.enabled)
            except SourceError as err:
                raise DecontamError(str(err).replace(f"source '{e.name}'", f"evaluation set '{e.name}'", 1)) from None
            _check_usable(e, src.num_rows, rh, cfg.images.enabled)
            self.sets.append(SetInfo(e.name, str(e.path), src.num_rows, len(rh.img), len(rh.turn_row), rh.unreadable,
                                     rh.unreadable_rows.tolist()))
            parts.append((k, rh))
        self.reused, self.made = cache.reused, cache.made
        cat = lambda xs, t: np.concatenate(xs).astype(t) if xs else np.empty(0, t)  # noqa: E731
        self.img_set = cat([np.full(len(rh.img), k) for k, rh in parts], np.int32)
        self.img_row = cat([rh.img_row for _, rh in parts], np.int64)
        self.fine = np.concatenate([rh.fine for _, rh in parts]) if parts else np.empty((0, 4), np.uint64)
        self.images = HammingIndex.build(cat([rh.img for _, rh in parts], np.uint64))
        self.turn_set = cat([np.full(len(rh.turn_row), k) for k, rh in parts], np.int32)
        self.turn_row = cat([rh.turn_row for _, rh in parts], np.int64)
        self.questions = TextIndex.build([rh.question(t) for _, rh in parts for t in range(len(rh.turn_row))])
        self.pairs = TextIndex.build([rh.question_answer(t) for _, rh in parts for t in range(len(rh.turn_row))])

    def check(self, rh: RowHashes) -> list[Hit]:
        """Every hit of these rows: for each image, the images of each set within the distances
        (the closest MAX_IMAGE_HITS); for each turn, the most similar question (and question +
        answer) of each set."""
        hits: list[Hit] = []
        im, tx = self.cfg.images, self.cfg.text
        if im.enabled and len(rh.img):
            qi, ids, _ = self.images.near(rh.img, im.max_distance)
            d = fine_distances(rh.fine[qi], self.fine[ids])
            sure = d <= im.confirm_distance
            qi, ids, d = qi[sure], ids[sure], d[sure]
            o = np.lexsort((ids, d, qi))
            per: Counter[tuple[int, int]] = Counter()
            for q, i, dist in zip(qi[o].tolist(), ids[o].tolist(), d[o].tolist()):  # by query, then distance
                k = int(self.img_set[i])
                per[q, k] += 1
                if per[q, k] <= MAX_IMAGE_HITS:
                    hits.append(Hit(int(rh.img_row[q]), None, self.sets[k].name, int(self.img_row[i]), "image",
                                    distance=int(dist)))  # bits of the 256-bit hash
        if tx.enabled:
            for t in range(len(rh.turn_row)):
                for kind, index, query, floor in (("question_answer", self.pairs, rh.question_answer(t), tx.question_answer),
                                                  ("question", self.questions, rh.question(t), tx.question)):
                    if floor is None or (kind == "question" and rh.q_words[t] < tx.min_question_words):
                        continue
                    seen_sets: set[int] = set()
                    for item, overlap in index.similar(query, floor):  # best first
                        k = int(self.turn_set[item])
                        if k not in seen_sets:
                            seen_sets.add(k)
                            hits.append(Hit(int(rh.turn_row[t]), int(rh.turn_idx[t]), self.sets[k].name,
                                            int(self.turn_row[item]), kind, overlap=overlap))
        return hits


def marked(hits: list[Hit]) -> tuple[set[int], dict[int, set[int]]]:
    """The rows an image hit marks, and the turns a text hit marks (by row)."""
    rows = {h.row for h in hits if h.turn is None}
    turns: dict[int, set[int]] = {}
    for h in hits:
        if h.turn is not None:
            turns.setdefault(h.row, set()).add(h.turn)
    return rows, turns


@dataclass(slots=True)
class DecontamSummary(Summary):
    """What a check found, for the run summary, the JSON output and the card."""

    action: str
    sets: list[dict]
    images: dict
    text: dict
    hits: dict[str, dict[str, int]] = field(default_factory=dict)  # set -> kind -> hits
    rows_marked: int = 0
    turns_marked: int = 0
    rows_dropped: int = 0
    turns_dropped: int = 0
    report: str | None = None

    @classmethod
    def start(cls, index: EvalIndex) -> DecontamSummary:
        c = index.cfg
        return cls(str(c.action), [asdict(s) for s in index.sets],
                   c.images.model_dump(mode="json"), c.text.model_dump(mode="json"),
                   {s.name: {} for s in index.sets})

    def add(self, hits: list[Hit]) -> None:
        for h in hits:
            kinds = self.hits.setdefault(h.eval_set, {})
            kinds[h.kind] = kinds.get(h.kind, 0) + 1
        rows, turns = marked(hits)
        self.rows_marked += len(rows)
        self.turns_marked += sum(len(t) for r, t in turns.items() if r not in rows)

    def merge(self, other: dict) -> None:
        """Add the counts of another check of the same sets (a write task's, to the dataset's)."""
        for name, kinds in other["hits"].items():
            mine = self.hits.setdefault(name, {})
            for kind, n in kinds.items():
                mine[kind] = mine.get(kind, 0) + n
        for k in ("rows_marked", "turns_marked", "rows_dropped", "turns_dropped"):
            setattr(self, k, getattr(self, k) + other[k])


def report_lines(hits: list[Hit], sample_of: Callable[[int], object]) -> list[str]:
    return [json.dumps(h.record(sample_of(h.row)), sort_keys=True, ensure_ascii=False) + "\n" for h in hits]


def decontam_markdown(d: dict | None) -> list[str]:
    """The card's Decontamination section."""
    if not d:
        return []
    im, tx = d["images"], d["text"]
    lines = ["## Decontamination", "",
             f"Checked against {len(d['sets'])} evaluation set(s); hits were "
             f"{'left out' if d['action'] == 'drop' else 'kept and flagged'} "
             f"(the list: `{REPORT}`).", "",
             f"- Images: {'perceptual hashes, 64-bit at most ' + str(im['max_distance']) + ' and 256-bit at most ' + str(im['confirm_distance']) + ' bits apart' if im['enabled'] else 'not checked'}.",
             f"- Text: {'word ' + str(tx['ngram']) + '-grams of the question (overlap at least ' + str(tx['question']) + ') and of question + answer (at least ' + str(tx['question_answer']) + ')' if tx['enabled'] else 'not checked'}.",
             "", "| evaluation set | rows | images | questions | image hits | question hits | question + answer hits |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in d["sets"]:
        h = Counter(d["hits"].get(s["name"], {}))
        lines.append(f"| {s['name']} | {s['rows']:,} | {s['images']:,} | {s['questions']:,} | {h['image']:,} | "
                     f"{h['question']:,} | {h['question_answer']:,} |")
    lines += ["", f"Samples with a page image in an evaluation set: {d['rows_marked']:,}; other pairs that copy "
              f"an evaluation question: {d['turns_marked']:,}"
              + (f" (left out: {d['rows_dropped']:,} samples, {d['turns_dropped']:,} pairs)." if d["action"] == "drop" else "."), ""]
    return lines
