"""Run tasks in a process pool, surviving workers that die (a segfault in a C library).

A task whose worker dies is retried alone in a fresh one-process pool, so a
crash is pinned on the task that caused it. Each time it dies alone, on_crash
says whether to try again (the stage may have learnt which item to skip) or to
give the task up; either way the run goes on. Ordinary exceptions propagate: they are
bugs or a full disk, and finished tasks are already committed for a resume.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import threading
from multiprocessing import forkserver
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from docsynth.core.children import stop_tree
from docsynth.core.tasks import Task

log = logging.getLogger(__name__)
STOP_POLL_S = 0.2  # how often a pool with a stop event looks at it while its tasks run


def prestart(preload: list[str]) -> None:
    """Start the forkserver and its import of these modules now, so it overlaps the caller's
    planning instead of delaying the first task."""
    _context(preload)
    forkserver.ensure_running()


def _context(preload: list[str]):
    # A forkserver is safe beside threads and engines in the parent (unlike fork), and it
    # imports the workers' modules once: each worker, and each retry pool, is then a cheap fork
    # of it instead of a fresh interpreter importing pymupdf, pyarrow and pydantic (~0.4 s each).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(sorted({*preload, *_imported()}))
    return ctx


def _imported() -> list[str]:
    """The docsynth modules this process has imported. Each worker runs the parent's main script
    again (multiprocessing does, for a script's functions to unpickle); the `docsynth` command's
    imports the whole CLI, and a worker that had to import it took 0.27 s to start, where one
    forked from a forkserver that has it took 0.01 s (bench/ingest.py --large: a third of what a
    small corpus's run spent outside its tasks). docsynth imports no heavy library (vLLM, torch,
    Ray) at module level, so this adds no engine to the forkserver."""
    return [name for name in list(sys.modules) if name.split(".")[0] == "docsynth" and not name.endswith("__main__")]


class Cancelled(BaseException):
    """run_tasks was asked to stop (its caller is unwinding from another thread)."""


def run_tasks(
    fn: Callable[..., Any],
    tasks: Iterable[Task],
    args: tuple,
    workers: int,
    on_result: Callable[[Task, Any], None],
    on_crash: Callable[[Task], bool],
    initializer: Callable[[], None] | None = None,
    preload: list[str] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Call fn(task, *args) for every task in worker processes; on_result runs in this process.
    preload: the modules the forkserver imports for its workers (default: fn's). When stop is
    set (from another thread), the workers and their children are stopped and Cancelled raised."""
    ctx = _context(preload or [fn.__module__])
    pending = list(tasks)
    suspects: list[Task] = []
    while pending:
        pending = _pass(fn, pending, args, workers, on_result, suspects, ctx, initializer, stop)
    for task in suspects:  # alone, so a second crash is this task's own
        log.warning("%s: retrying alone after a worker process died", task.name)
        while True:
            crashed: list[Task] = []
            _pass(fn, [task], args, 1, on_result, crashed, ctx, initializer, stop)
            if not crashed or not on_crash(task):
                break


def _init(env: dict[str, str], initializer: Callable[[], None] | None) -> None:
    os.environ.clear()
    os.environ.update(env)
    if initializer is not None:
        initializer()


def _pass(fn, tasks, args, workers, on_result, suspects, ctx, initializer, stop) -> list[Task]:
    """One pool's life; returns tasks not yet run when the pool broke (the suspects aside)."""
    todo = list(reversed(tasks))
    inflight: dict[Future, Task] = {}
    # The forkserver keeps the environment it started with; workers get the current one.
    init_args = (dict(os.environ), initializer)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init, initargs=init_args)
    try:
        while todo or inflight:
            while todo and len(inflight) < 2 * workers:
                # submit raises BrokenProcessPool if a worker died since the last wait: the
                # task leaves todo only once it is in flight, or it would be lost
                inflight[pool.submit(fn, todo[-1], *args)] = todo[-1]
                todo.pop()
            done, _ = wait(inflight, timeout=STOP_POLL_S if stop else None, return_when=FIRST_COMPLETED)
            if stop is not None and stop.is_set():
                raise Cancelled()
            for fut in done:
                result = fut.result()  # raises BrokenProcessPool if the worker died
                on_result(inflight.pop(fut), result)
    except BrokenProcessPool:
        suspects.extend(inflight.values())
        log.warning("a worker process died; %d task(s) in flight will be retried", len(inflight))
        pool.shutdown(wait=True)
        return list(reversed(todo))
    except BaseException:
        # Ctrl-C, SIGTERM, an error: stop the workers and what they run (tesseract) now. A
        # plain shutdown waits for the tasks in flight, which an OCR task can make minutes.
        stop_tree([p.pid for p in (pool._processes or {}).values()])
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return []
