"""A stage that is not docsynth's: it tallies each candidate shard's samples and pairs into a
shard of its own (RUN/tally/). It is one package plus one line in a pipeline, to show that both
executors run a stage they do not name (tests/run/test_stage_example.py):

    pipeline = (*PIPELINE[:2], TALLY, *PIPELINE[2:])   # after generate
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from docsynth.core.files import atomic_write
from docsynth.core.summary import StageSummary
from docsynth.config.section import config_hash
from docsynth.core.tasks import Finished, Task, TaskStore
from docsynth.executors.pipeline import StageSpec

SCHEMA = pa.schema([("task", pa.int64()), ("samples", pa.int64()), ("pairs", pa.int64())])


@dataclass(slots=True)
class TallyTask(Task):
    shard: str = ""  # the candidate shard it reads


@dataclass(slots=True)
class TallySummary(StageSummary):
    samples: int = 0
    pairs: int = 0

    @property
    def produced(self) -> bool:
        return self.samples > 0


class TallyStage:
    name = "tally"
    workers = 1  # a CPU stage: its tasks run in a worker process (locally) or Ray tasks
    opening = ""
    follows = True  # one task per candidate shard, made as generate finishes each

    def __init__(self, out: Path) -> None:
        self.out = out
        self.upstream = TaskStore.of(out, "generate")
        self.store = TaskStore.of(out, "tally")  # RUN/tally/: a stage docsynth does not know has its own folder

    def begin(self) -> None:
        self.store.prepare()

    def plan(self) -> list[TallyTask]:
        return [self.task_of(f) for f in self.upstream.finished(verify=True)]

    def task_of(self, generated: Finished) -> TallyTask:
        return TallyTask(generated.index, config_hash({"candidates": generated.info["sha256"]}), str(generated.shard))

    def open(self) -> None:
        pass

    def run(self, tasks: list[TallyTask]):
        for task in tasks:
            rows = pq.read_table(task.shard, columns=["questions"]).column("questions").to_pylist()
            counts = {"samples": len(rows), "pairs": sum(len(p or []) for p in rows)}
            atomic_write(self.store.shard(task), lambda tmp, c=counts, i=task.index: pq.write_table(
                pa.table({"task": [i], **{k: [v] for k, v in c.items()}}, schema=SCHEMA), tmp))
            yield task, counts

    def crashed(self, task: TallyTask) -> dict | None:
        return None

    def finish(self, tasks: list[TallyTask], markers: dict[int, dict], reused: set[int], t0: float) -> TallySummary:
        return TallySummary(out_dir=str(self.out), tasks=len(tasks), tasks_skipped=len(reused),
                            samples=sum(markers[t.index]["samples"] for t in tasks),
                            pairs=sum(markers[t.index]["pairs"] for t in tasks), seconds=round(time.perf_counter() - t0, 3))


TALLY = StageSpec("tally", lambda c: TallyStage(c.out), "cpu")
