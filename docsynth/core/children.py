"""Stopping what a run started: every process below this one, on any way out.

Measured before: `kill -TERM` of `docsynth run` exited 143 at once, and its vLLM EngineCore and
worker (6.3 GB RSS), the ingest forkserver, the pool workers and a running tesseract lived on
for a minute or more. Python's default SIGTERM ends the process without unwinding, and an
orphan has nobody to stop it. So SIGTERM is turned into an exception that unwinds like Ctrl-C
(`signals_unwind`), and every descendant is stopped on the way out (`stop_tree`): the tree is
listed first, then signalled, so a grandchild (tesseract under a pool worker) is not missed
when its parent goes first.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import psutil

log = logging.getLogger(__name__)
GRACE_S = 3.0  # from SIGTERM to SIGKILL: vLLM's engine and the pool workers exit well within it


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like KeyboardInterrupt (finally blocks run, locks are dropped)."""

    exit_code = 128 + signal.SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextmanager
def signals_unwind() -> Iterator[None]:
    """Within this block (in the main thread), SIGTERM raises Terminated; and on the way out,
    however it is left, every descendant process is stopped."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        # A second SIGTERM while stopping children must not cut the stopping short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop_tree()
        finally:
            signal.signal(signal.SIGTERM, previous)


def descendants(pids: Iterable[int] | None = None) -> list[psutil.Process]:
    """The processes below these (default: below this one), and these themselves when given."""
    roots = [psutil.Process()] if pids is None else []
    out: list[psutil.Process] = []
    for pid in pids or []:
        try:
            roots.append(psutil.Process(pid))
            out.append(roots[-1])
        except psutil.NoSuchProcess:
            pass
    for root in roots:
        try:
            out += root.children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    return out


def stop_tree(pids: Iterable[int] | None = None, grace_s: float = GRACE_S) -> list[int]:
    """SIGTERM every process below this one (or these processes and those below them), SIGKILL
    what is left after grace_s; returns the pids that were running."""
    procs = descendants(pids)
    procs = [p for p in procs if p.pid != os.getpid()]
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        log.debug("process %d did not stop on SIGTERM; killing it", p.pid)
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return [p.pid for p in procs]
