"""How often drive (docsynth.executors.drive) takes a stage's plan: once for a stage with nothing
running beside it (a plan can cost: ingest's counts the pages of large documents), and again and
again for one that follows a running stage, until that stage has ended."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from docsynth.core.files import atomic_write
from docsynth.core.pool import _context
from docsynth.core.tasks import Task, TaskStore
from docsynth.executors.drive import drive


class Counting:
    """A stage of `n` tasks (n read at each plan), run in this process, that counts its plans."""

    name = "counting"
    workers = 0
    opening = ""

    def __init__(self, out: Path, n: int) -> None:
        self.store = TaskStore.of(out, "counting")
        self.n, self.plans = n, 0

    def begin(self) -> None:
        self.store.prepare()

    def plan(self) -> list[Task]:
        self.plans += 1
        return [Task(i, f"k{i}") for i in range(self.n)]

    def open(self) -> None:
        pass

    def run(self, tasks):
        for t in tasks:
            atomic_write(self.store.shard(t), lambda tmp, i=t.index: pq.write_table(pa.table({"i": [i]}), tmp))
            yield t, {}

    def crashed(self, task):
        return None

    def finish(self, tasks, markers, reused, t0):
        return [t.index for t in tasks]


def test_a_stage_with_nothing_beside_it_is_planned_once(tmp_path):
    stage = Counting(tmp_path, 3)
    assert drive(stage) == [0, 1, 2]
    assert stage.plans == 1
    again = Counting(tmp_path, 3)  # a rerun: every task is kept, still one plan
    assert drive(again) == [0, 1, 2] and again.plans == 1


def test_a_following_stage_is_planned_until_the_stage_before_it_has_ended(tmp_path):
    stage = Counting(tmp_path, 1)
    answers = iter([False, False, True])  # upstream_done: ended at the third look

    def upstream_done() -> bool:
        done = next(answers)
        stage.n += 0 if done else 1  # the running upstream finished one more task
        return done

    assert drive(stage, upstream_done=upstream_done) == [0, 1, 2]
    assert stage.plans == 3


def test_the_forkserver_imports_the_docsynth_modules_its_parent_has(tmp_path):
    # A worker runs its parent's main script again; the `docsynth` command's imports the whole CLI
    # (0.27 s a worker when the forkserver had not imported it, bench/ingest.py --large).
    import docsynth.cli  # noqa: F401  (as the command has)
    import multiprocessing.forkserver as fs

    _context(["tests.run.test_drive"])
    preload = fs._forkserver._preload_modules
    assert "docsynth.cli" in preload and "tests.run.test_drive" in preload
    assert "docsynth.core.pool" in preload and not any(m.endswith("__main__") for m in preload)
