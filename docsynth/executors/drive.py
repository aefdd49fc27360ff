"""Driving one stage here: its plan, the tasks an earlier run finished kept, the rest run in the
stage's `workers` processes (a process pool that survives crashing workers) or in this process,
each committed as it finishes, then the stage's finish. Both executors use it: the local one for
every stage, the Ray one for the stages placed on the driver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from docsynth.core.pool import prestart, run_tasks
from docsynth.core.stage import Progress, Stage, StoredMarkers, run_one

POLL_S = 0.2  # how often a stage that follows a running one looks for newly finished tasks


def drive(stage: Stage, progress: Progress | None = None, upstream_done: Callable[[], bool] | None = None,
          stop: threading.Event | None = None):
    """Run a stage's tasks here and return its summary. With upstream_done, the stage follows one
    running beside it: its plan is taken again and again, until upstream_done() says the
    upstream stage has finished and every task it made has been seen. With stop (a stage run on
    a thread), setting it stops the stage's worker processes and ends the drive."""
    t0 = time.perf_counter()
    progress = progress or Progress()
    if stage.workers > 0:
        prestart([type(stage).__module__])  # worker imports overlap the checks and planning below
    stage.begin()
    seen: dict[int, object] = {}
    finished: set[int] = set()  # their markers stay on disk (StoredMarkers)
    reused: set[int] = set()

    def committed(task, info: dict) -> None:
        stage.store.commit(task, info)
        finished.add(task.index)
        progress.advanced(stage.name, task, info, False)

    try:
        while True:
            ended = upstream_done is None or upstream_done()  # read first: a task done before it is seen below
            plan = stage.plan()
            if upstream_done is None:
                stage.store.prune(plan)
            new = [t for t in plan if t.index not in seen or seen[t.index].key != t.key]
            progress.planned(stage.name, new)
            todo = []
            for t in new:
                seen[t.index] = t
                info = stage.store.done(t)
                if info is None:
                    finished.discard(t.index)
                    reused.discard(t.index)
                    todo.append(t)
                else:
                    finished.add(t.index)
                    reused.add(t.index)
                    progress.advanced(stage.name, t, info, True)
            if todo:
                _run(stage, todo, committed, progress, stop)
            if ended:  # the upstream was done before this plan: nothing new can come (and a plan
                break  # can cost: ingest's counts the pages of large documents, 0.2 s for three)
            if not todo:
                time.sleep(POLL_S)
    except BaseException:  # interrupted (SIGTERM, Ctrl-C) or failed: the workers are stopped by now
        stage.store.tidy()  # what they left half-written; finished tasks stay
        raise
    tasks = sorted(seen.values(), key=lambda t: t.index)
    stage.store.prune(tasks)
    return stage.finish(tasks, StoredMarkers(stage.store, finished), reused, t0)


def _run(stage: Stage, todo: list, committed: Callable[[object, dict], None], progress: Progress,
         stop: threading.Event | None = None) -> None:
    """The tasks in the stage's worker processes, or in this one (opened once, on first use)."""
    if stage.workers > 0:
        def on_crash(task) -> bool:
            info = stage.crashed(task)
            if info is not None:
                committed(task, info)
            return info is None

        run_tasks(run_one, todo, (stage,), min(stage.workers, len(todo)), committed, on_crash,
                  initializer=stage.open, preload=[type(stage).__module__], stop=stop)
        return
    if stage.opening:
        progress.status(stage.name, stage.opening)
    stage.open()
    for task, info in stage.run(todo):
        committed(task, info)
