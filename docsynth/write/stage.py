"""Filter and write: QA candidates in, a dataset in exactly the Cauldron schema out.

    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet  shards of version VVVVVVVV, of about
                                            write.shard_rows rows / shard_bytes
    OUT/README.md                           dataset card (the Hub's YAML header + how it was made),
                                            naming the live version's shards
    OUT/.docsynth-write.json                what made it (key, counts); written last (DatasetMarker)
    RUN/filter-rejects.jsonl                every dropped pair or sample with its reason

Shards are written under names of a new version and the card switches to them in one rename
(docsynth.dataset.versions), so a reader, or a crash, sees the previous dataset or the new one,
never a mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.summary import Summary
from docsynth.core.version import __version__
from docsynth.core.errors import DocsynthError
from docsynth.core.records import RATED_AXES
from docsynth.dataset.cauldron import (DATASET_SCHEMA, cauldron_row,
                                       rows_to_table, write_shard)
from docsynth.dataset.versions import MARKER, begin, stage_version, switch
from docsynth.core.records import reason_kind
from docsynth.write.decontam import WriteDecontam
from docsynth.write.filters import Pair, apply_filters, build_filters
from docsynth.write.card import dataset_card
from docsynth.write.verdicts import Quality, VerdictSource, pairs_of
from docsynth.config.section import config_hash
from docsynth.config.recipe import Recipe
from docsynth.dataset.stats import StatsAccumulator
from docsynth.core.duplicates import duplicate_counts
from docsynth.core.files import atomic_write, atomic_write_text
from docsynth.core.tasks import Finished, Task, TaskStore
from docsynth.core.rundir import RunDir

_COLUMNS = ["sample_id", "doc_id", "source", "pages", "images", "text", "questions", "answers", "template", "model",
            "evidence"]


@dataclass(slots=True)
class WriteSummary(Summary):
    out_dir: str
    samples_in: int = 0
    samples_out: int = 0
    pairs_in: int = 0
    pairs_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # pairs, by filter
    samples_dropped: int = 0  # left with no pairs
    quality: dict = field(default_factory=dict)  # round-trip verification (docsynth.write.verdicts)
    decontamination: dict = field(default_factory=dict)  # docsynth.decontam.index; {} when not checked
    duplicates: dict = field(default_factory=dict)  # near-duplicates ingest dropped (ingest.dedup)
    shards: list[str] = field(default_factory=list)
    bytes: int = 0
    reused: bool = False
    seconds: float = 0.0

    @property
    def produced(self) -> bool:
        return self.samples_out > 0


@dataclass(slots=True)
class WriteTask(Task):
    """The whole dataset: one task, keyed by every candidate shard and the filter and write config."""


class DatasetMarker:
    """The write stage's store: OUT/.docsynth-write.json, written last, says which key the
    dataset in OUT was made from and what it holds."""

    def __init__(self, out: Path) -> None:
        self.path = out / MARKER

    def done(self, task: WriteTask) -> dict | None:
        try:
            done = json.loads(self.path.read_text())
            if done["key"] == task.key and all((self.path.parent / s).exists() for s in done["summary"]["shards"]):
                return done["summary"]
        except (OSError, ValueError, KeyError):
            pass
        return None

    def commit(self, task: WriteTask, info: dict) -> None:
        atomic_write_text(self.path, json.dumps({"key": task.key, "summary": info}, sort_keys=True))

    def prune(self, tasks: list) -> None:
        pass  # one task, always in the plan

    def tidy(self) -> None:
        pass  # written in this process: a failed publish removes its own temporaries (docsynth.dataset.versions)

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


class WriteStage:
    """Filter every candidate's pairs and write the survivors as Cauldron shards with a card
    (see docsynth.core.stage)."""

    name = "write"
    workers = 0
    opening = ""

    def __init__(self, recipe: Recipe, run_dir: Path, out: Path | None = None, base: Path | None = None) -> None:
        self.recipe, self.run_dir, self.out = recipe, run_dir, out or RunDir(run_dir).dataset
        self.base = base or Path.cwd()  # the recipe's folder: evaluation set paths are relative to it
        self.upstream = TaskStore.of(run_dir, "generate")
        self.store = DatasetMarker(self.out)

    def begin(self) -> None:
        if not self.upstream.root.is_dir():
            raise DocsynthError(f"{self.run_dir} is not a generate output (no {self.upstream.root.name}/ folder)")

    def plan(self) -> list[WriteTask]:
        """What the dataset depends on: every candidate shard (its marker key, and its sha256, so
        a shard regenerated under the same key with other bytes counts as new), the filters and
        the writer. Content only, no mtime: the same inputs give the same key, hence the same
        shard names (docsynth.dataset.versions), on any executor."""
        self.candidates = self.upstream.finished(verify=True)
        self.verdicts = VerdictSource(self.run_dir, self.candidates, self.recipe.verify.enabled)
        keys = [[f.info["key"], f.shard.name, f.info.get("sha256")] for f in self.candidates]
        r = self.recipe
        # the evaluation sets are opened, checked and hashed here, before anything is written
        self.decontam = (WriteDecontam(r.decontaminate.resolved(self.base), self.run_dir)
                         if r.decontaminate.enabled else None)
        return [WriteTask(0, config_hash({"filters": [f.model_dump(mode="json") for f in r.filters],
                                          "write": r.write.model_dump(mode="json"), "name": r.name},
                                         keys, self.verdicts.keys(), __version__,
                                         *([self.decontam.key()] if self.decontam else [])))]

    def open(self) -> None:
        pass

    def run(self, tasks: list[WriteTask]):
        for task in tasks:
            yield task, _write(self.recipe, self.run_dir, self.out, self.candidates, self.verdicts, task.key,
                               self.decontam).to_dict()

    def crashed(self, task: WriteTask) -> dict | None:
        return None

    def finish(self, tasks: list[WriteTask], markers: dict[int, dict], reused: set[int], t0: float) -> WriteSummary:
        return WriteSummary(**{**markers[0], "reused": 0 in reused, "seconds": round(time.perf_counter() - t0, 3)})


def _write(recipe: Recipe, run_dir: Path, out: Path, candidates: list[Finished], verdicts: VerdictSource,
           key: str, decontam: WriteDecontam | None = None) -> WriteSummary:
    t0 = time.perf_counter()
    data = begin(out)
    s = WriteSummary(out_dir=str(out))
    filters = build_filters(recipe.filters)
    dropped: Counter[str] = Counter()
    templates: Counter[str] = Counter()
    models: set[str] = set()
    rejects: list[str] = []
    examples: list[dict] = []
    parts: list[Path] = []
    stats = StatsAccumulator()
    buf: list[dict] = []
    buf_bytes = 0
    cfg = recipe.write

    def flush() -> None:
        nonlocal buf_bytes
        part = data / f".part-{len(parts):05d}.parquet"
        table = rows_to_table(buf, DATASET_SCHEMA)
        stats.add(table)
        atomic_write(part, lambda tmp: write_shard(table, tmp, cfg.row_group_bytes, DATASET_SCHEMA))
        parts.append(part)
        buf.clear()
        buf_bytes = 0

    quality = Quality(used=verdicts.used)
    for shard in candidates:
        judged = verdicts.of(shard.index)
        hits = decontam.shard(shard) if decontam else {}
        at = -1  # the row within the shard, as decontam.shard counts
        f = pq.ParquetFile(shard.shard)
        have = set(f.schema_arrow.names)  # a shard from before answer-first has no evidence
        for batch in f.iter_batches(batch_size=64, columns=[x for x in _COLUMNS if x in have]):
            for c in batch.to_pylist():
                at += 1
                s.samples_in += 1
                s.pairs_in += len(c["questions"])
                v = judged.get(c["sample_id"])
                pairs = pairs_of(c, v)
                kept, gone = apply_filters(pairs, filters)
                if at in hits:  # an image hit takes every pair the filters kept; a text hit its own
                    live = [i for i, p in enumerate(pairs) if any(p is k for k in kept)]
                    whole, one = decontam.apply(c["sample_id"], hits[at], live)
                    out_now = {i: whole for i in live} if whole else one
                    gone += [(pairs[i], why) for i, why in out_now.items()]
                    kept = [pairs[i] for i in live if i not in out_now]
                quality.add(v, [any(p is k for k in kept) for p in pairs])
                for p, why in gone:
                    dropped[reason_kind(why)] += 1
                    rejects.append(_reject(c, p, why))
                if not kept:
                    s.samples_dropped += 1
                    rejects.append(_reject(c, None, "no pairs left after filtering"))
                    continue
                source = (f"docsynth:{recipe.name} doc:{c['doc_id']} pages:{c['pages'][0]}-{c['pages'][-1]} "
                          f"template:{c['template']} model:{c['model']}")
                row = cauldron_row(c["images"], [p.question for p in kept], [p.answer for p in kept], source,
                                   {ax: [p.ratings.get(ax) for p in kept] for ax in RATED_AXES},
                                   [p.verified for p in kept], [p.checks for p in kept], [p.evidence for p in kept])
                if len(examples) < cfg.card_examples:
                    examples.append({"source": c["source"], "pages": c["pages"], "texts": row["texts"]})
                templates[c["template"]] += 1
                models.add(c["model"])
                s.samples_out += 1
                s.pairs_out += len(kept)
                buf.append(row)
                buf_bytes += sum(len(b) for b in c["images"])
                if len(buf) >= cfg.shard_rows or buf_bytes >= cfg.shard_bytes:
                    flush()
    s.dropped = dict(sorted(dropped.items()))
    s.quality = quality.to_dict()
    s.decontamination = decontam.finish() if decontam else {}
    s.duplicates = duplicate_counts(run_dir)
    if not s.samples_in:
        raise DocsynthError(f"{run_dir} holds no QA candidates to write: generate rejected every sample "
                            f"(reasons in {run_dir / 'generate-rejects.jsonl'}; docsynth rejects {run_dir})")
    if not s.samples_out:
        atomic_write_text(RunDir(run_dir).rejects("write"), "".join(r + "\n" for r in rejects))
        raise DocsynthError(f"no sample is left after filtering ({s.samples_in} in; pairs dropped by filter: "
                            f"{s.dropped or 'none'}; each with its reason in {RunDir(run_dir).rejects('write')}); "
                            "nothing written: loosen the recipe's filters")
    if buf:
        flush()
    version = stage_version(out, parts, key)
    s.shards = version.names
    s.bytes = sum(p.stat().st_size for p in version.shards)
    atomic_write_text(RunDir(run_dir).rejects("write"), "".join(r + "\n" for r in rejects))
    switch(out, dataset_card(recipe, s, templates, sorted(models), examples, stats.result(), version.pattern), version)
    s.seconds = round(time.perf_counter() - t0, 3)
    return s


def _reject(c: dict, pair: Pair | None, reason: str) -> str:
    r = {"stage": "filter", "source": c["source"], "doc_id": c["doc_id"], "page": c["pages"][0],
         "sample_id": c["sample_id"], "reason": reason}
    if pair is not None:
        r.update(question=pair.question, answer=pair.answer)
    return json.dumps(r, sort_keys=True, ensure_ascii=False)
