"""Filter and write: QA candidates in, a dataset in exactly the Cauldron schema out.

    RUN/filtered/task-NNNNN.parquet         one task per candidate shard: its samples filtered (and
                                            checked against evaluation sets), as Cauldron rows
                                            (docsynth.write.part); the marker holds its counts
    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet  shards of version VVVVVVVV, of about
                                            write.shard_rows rows / shard_bytes, cut from the
                                            parts a row group at a time (docsynth.write.assemble)
    OUT/README.md                           dataset card (the Hub's YAML header + how it was made),
                                            naming the live version's shards
    OUT/.docsynth-write.json                what made it (key, counts, shards); written last
    RUN/filter-rejects.jsonl                every dropped pair or sample with its reason

The tasks run in worker processes here and as Ray tasks on a cluster, each as soon as its
candidate shard is verified (`follows`, with verify on); the dataset is assembled on the driver
by `finish`. Shards are written under names of a new version and the card switches to them in
one rename (docsynth.dataset.versions), so a reader, or a crash, sees the previous dataset or
the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from docsynth.config.recipe import Recipe
from docsynth.config.section import config_hash
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text
from docsynth.core.rundir import RunDir
from docsynth.core.summary import StageSummary
from docsynth.core.tasks import Finished, Task, TaskStore
from docsynth.core.version import __version__
from docsynth.dataset.versions import MARKER
from docsynth.write.assemble import assemble
from docsynth.write.decontam import WriteDecontam
from docsynth.write.filters import build_filters
from docsynth.write.part import PartConfig, write_part
from docsynth.write.verdicts import VerdictSource


@dataclass(slots=True, kw_only=True)
class WriteSummary(StageSummary):
    samples_in: int = 0
    samples_out: int = 0
    pairs_in: int = 0
    pairs_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # pairs, by filter
    samples_dropped: int = 0  # left with no pairs
    quality: dict = field(default_factory=dict)  # round-trip verification (docsynth.write.verdicts)
    decontamination: dict = field(default_factory=dict)  # docsynth.decontam.index; {} when not checked
    duplicates: dict = field(default_factory=dict)  # near-duplicates ingest dropped (ingest.dedup)
    shards: int = 0  # in OUT/data (their names: OUT/.docsynth-write.json and the card)
    bytes: int = 0
    reused: bool = False  # the dataset in OUT was already this one: nothing was rewritten

    @property
    def produced(self) -> bool:
        return self.samples_out > 0


@dataclass(slots=True)
class WriteTask(Task):
    """One candidate shard, and its verdicts when they are used."""

    candidates: str = ""
    candidates_sha256: str = ""
    verdicts: str | None = None
    samples: int = 0  # candidates in it (what progress counts)


class DatasetMarker:
    """OUT/.docsynth-write.json, written last: which key the dataset in OUT was made from, its
    summary and its shards."""

    def __init__(self, out: Path) -> None:
        self.path = out / MARKER

    def done(self, key: str) -> dict | None:
        try:
            done = json.loads(self.path.read_text())
            if done["key"] == key and all((self.path.parent / s).exists() for s in done["shards"]):
                return done["summary"]
        except (OSError, ValueError, KeyError):
            pass
        return None

    def commit(self, key: str, summary: dict, shards: list[str]) -> None:
        atomic_write_text(self.path, json.dumps({"key": key, "summary": summary, "shards": shards}, sort_keys=True))

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


class WriteStore:
    """The write stage's store: its tasks' parts (a TaskStore, RUN/filtered/) and the dataset's
    marker; forgetting forgets both, so `--force write` rewrites the dataset."""

    def __init__(self, tasks: TaskStore, dataset: DatasetMarker) -> None:
        self.tasks, self.dataset = tasks, dataset

    def __getattr__(self, name: str):  # done, commit, prune, tidy, prepare, shard: the tasks'
        return getattr(self.__dict__["tasks"], name)

    def __getstate__(self):
        return self.__dict__

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)

    def forget(self) -> None:
        self.tasks.forget()
        self.dataset.forget()


# Made once per process that runs write tasks, by key: the built filters (closures, which do not
# pickle) and the evaluation sets' index (rebuilt from RUN/hashes/eval, not sent with each task).
_PARTS: dict[str, PartConfig] = {}
_DECONTAM: dict[str, WriteDecontam] = {}


class WriteStage:
    """Filter every candidate's pairs, one task per candidate shard, and assemble the survivors
    into Cauldron shards with a card (see docsynth.core.stage)."""

    name = "write"
    opening = ""

    def __init__(self, recipe: Recipe, run_dir: Path, out: Path | None = None, base: Path | None = None) -> None:
        self.recipe, self.run_dir, self.out = recipe, run_dir, out or RunDir(run_dir).dataset
        self.base = base or Path.cwd()  # the recipe's folder: evaluation set paths are relative to it
        self.workers = recipe.write.workers or os.cpu_count() or 1
        self.candidates = TaskStore.of(run_dir, "generate")
        # With verification on, a task is made from each verified shard, as verify finishes it.
        self.follows = recipe.verify.enabled
        self.upstream = TaskStore.of(run_dir, "verify") if self.follows else self.candidates
        self.store = WriteStore(TaskStore.of(run_dir, "write"), DatasetMarker(self.out))
        d = recipe.decontaminate
        self.decontam_cfg = d.resolved(self.base) if d.enabled else None
        self.key = ""
        self.verdicts_used = self.follows

    def begin(self) -> None:
        if not self.candidates.root.is_dir():
            raise DocsynthError(f"{self.run_dir} is not a generate output (no {self.candidates.root.name}/ folder)")
        self.store.prepare()
        # the evaluation sets are opened, checked and hashed here, before any task
        decontam = self._decontam()
        r = self.recipe
        self.key = config_hash({"filters": [f.model_dump(mode="json") for f in r.filters], "name": r.name,
                                "card_examples": r.write.card_examples, "row_group_bytes": r.write.row_group_bytes},
                               __version__, *([decontam.key()] if decontam else []))

    def plan(self) -> list[WriteTask]:
        """A task per finished candidate shard (its marker key, and its sha256, so a shard
        regenerated under the same key with other bytes counts as new), with its verdicts when
        they are used: the recipe enables verification, or fresh ones exist for every shard."""
        candidates = self.candidates.finished(verify=True)
        verdicts = VerdictSource(self.run_dir, candidates, self.recipe.verify.enabled)
        self.verdicts_used = verdicts.used
        return [self._task(c, verdicts.of(c.index)) for c in candidates]

    def task_of(self, verified: Finished) -> WriteTask:
        """The task of one verified candidate shard (with verification on)."""
        c = self.candidates.info(verified.index)
        if verified.info.get("candidates_sha256") != c.info.get("sha256"):
            raise DocsynthError(f"{verified.shard} judged other candidates than {c.shard} holds now: "
                                "rerun docsynth verify (or docsynth run) first")
        return self._task(c, verified)

    def _task(self, c: Finished, verdicts: Finished | None) -> WriteTask:
        return WriteTask(c.index, config_hash(self.key, [c.info["key"], c.shard.name, c.info.get("sha256")],
                                              [verdicts.shard.name, verdicts.info.get("sha256")] if verdicts else None),
                         str(c.shard), c.info.get("sha256", ""), str(verdicts.shard) if verdicts else None,
                         c.info.get("samples_ok", 0))

    def _decontam(self) -> WriteDecontam | None:
        if self.decontam_cfg is None:
            return None
        key = config_hash(self.decontam_cfg.model_dump(mode="json"), str(self.run_dir))
        if key not in _DECONTAM:
            _DECONTAM[key] = WriteDecontam(self.decontam_cfg, self.run_dir)
        return _DECONTAM[key]

    def _part(self) -> PartConfig:
        if self.key not in _PARTS:
            r = self.recipe
            _PARTS[self.key] = PartConfig(r.name, build_filters(r.filters), r.write.card_examples, r.write.row_group_bytes)
        return _PARTS[self.key]

    def open(self) -> None:
        self._part()
        self._decontam()

    def run(self, tasks: list[WriteTask]):
        for task in tasks:
            yield task, write_part(self._part(), Path(task.candidates), task.candidates_sha256, task.verdicts,
                                   self.store.shard(task), self._decontam())

    def crashed(self, task: WriteTask) -> dict | None:
        """A worker died filtering this shard, alone, twice (docsynth.core.pool): an error that
        names it, not a third try; the tasks that finished are kept for the rerun."""
        raise DocsynthError(f"a worker process died while filtering {task.candidates} (write {task.name}); "
                            "rerun to try it again, or docsynth run --force generate to remake it")

    def finish(self, tasks: list[WriteTask], markers: dict[int, dict], reused: set[int], t0: float) -> WriteSummary:
        """The dataset from every task's part: the one in OUT when it was made from these very
        parts and write settings, else a new version (docsynth.write.assemble)."""
        r = self.recipe
        key = config_hash({"write": r.write.model_dump(mode="json", exclude={"workers"}), "name": r.name},
                          [t.key for t in tasks], __version__)
        base = {"out_dir": str(self.out), "tasks": len(tasks), "tasks_skipped": len(reused)}
        done = self.store.dataset.done(key)
        if done is not None:
            return WriteSummary(**{**done, **base, "reused": True, "seconds": round(time.perf_counter() - t0, 3)})

        def each():
            for t in tasks:
                yield self.store.shard(t), markers[t.index]

        s = WriteSummary(**base)
        names = assemble(r, self.run_dir, self.out, each, key, self.verdicts_used, self._decontam(), s)
        s.seconds = round(time.perf_counter() - t0, 3)
        self.store.dataset.commit(key, s.to_dict(), names)
        return s
