"""The stage contract: what ingest, generate, verify and write give the executors that drive them.

    stage.begin()       on the driver, before any task: its folder ready, the resolved recipe
    stage.plan()        the tasks: ingest's from the inputs; generate's from ingest's finished
                        tasks so far (called again while ingest runs beside it); write's one
    stage.open()        in each process that runs tasks, before them: a worker's set-up, an
                        engine (idempotent: what is open stays open)
    stage.run(tasks)    runs tasks into their shards and yields (task, marker info) as each is
                        written; a stage may batch (generate sends several tasks' samples to
                        the engine together)
    stage.crashed(task) a worker process died on this task alone: None to retry it, else the
                        marker info that gives it up
    stage.finish(tasks, markers, reused, t0)
                        on the driver, once every task is done: rejects, manifest, summary

A stage whose tasks are made one by one from the stage before it (generate from ingest's
shards, verify from generate's) says so with `follows = True`, and gives `upstream` (that
stage's store) and `task_of(finished)` (its task for one finished upstream task): an executor
may then run it while the stage before is still running (docsynth.executors.pipeline).

An executor decides only where and when tasks run: it skips tasks an earlier run finished
(`stage.store.done`), commits each task that finishes (`stage.store.commit`, after its shard is
in place), and hands every marker to `finish`. Shard and marker names are the store's alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from docsynth.core.tasks import Finished, Task


class Store(Protocol):
    """Where a stage's finished tasks are recorded (a TaskStore, or the dataset's marker)."""

    def done(self, task: Any) -> dict | None: ...

    def commit(self, task: Any, info: dict) -> None: ...

    def info(self, index: int) -> Finished: ...  # a finished task's marker

    def prune(self, tasks: list) -> None: ...

    def forget(self) -> None: ...

    def tidy(self) -> None: ...  # after an interruption: what stopped workers left half-written


class Stage(Protocol):
    name: str
    store: Store
    workers: int  # worker processes its tasks run in, at most (0: in the driver's process itself)
    opening: str  # what open() is about to start, said before it (an engine takes a while); "" for nothing

    def begin(self) -> None: ...

    def plan(self) -> list: ...

    def open(self) -> None: ...

    def run(self, tasks: list) -> Iterator[tuple[Any, dict]]: ...

    def crashed(self, task: Any) -> dict | None: ...

    def finish(self, tasks: list, markers: dict[int, dict], reused: set[int], t0: float) -> Any: ...


class StoredMarkers(Mapping):
    """The markers of a stage's finished tasks, by index, each read from the store when asked:
    the driver holds none (a Docmatix-size run has hundreds of thousands of tasks, and a
    marker carries its task's rejects). What `finish` is handed."""

    def __init__(self, store: Store, indices: set[int]) -> None:
        self.store, self.indices = store, indices

    def __getitem__(self, index: int) -> dict:
        if index not in self.indices:
            raise KeyError(index)
        return self.store.info(index).info

    def __iter__(self):
        return iter(sorted(self.indices))

    def __len__(self) -> int:
        return len(self.indices)


class Progress:
    """Hooks a caller may override to show progress; executors call them in the driver's process.
    `stage` is the stage's name; what a task counts (documents, pages) is the caller's to read."""

    def status(self, stage: str, message: str) -> None: ...

    def planned(self, stage: str, tasks: list) -> None:
        """More tasks are known (a stage that follows a running one is told again and again)."""

    def advanced(self, stage: str, task: Task, info: dict, reused: bool) -> None:
        """A task is finished: now, or by an earlier run (reused); info is its marker."""


def run_one(task: Any, stage: Stage) -> dict:
    """One task of a stage, in a worker process (whose initializer ran stage.open()); here, in the
    core, so a worker imports no executor to unpickle it."""
    ((_, info),) = stage.run([task])
    return info
