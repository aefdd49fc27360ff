"""A call into the in-process vLLM engine that fails within a second when its engine process dies.

vLLM runs the engine core in a process of its own. When that process is killed (the kernel's
OOM killer sends SIGKILL), vLLM 0.32's monitor thread marks the client dead, but a `generate`
or `chat` call already waiting for outputs waits on: measured, docsynth was still waiting 240 s
after the kill. So the call runs on a daemon thread and this thread watches the engine's
processes while it waits; when one is gone, EngineDiedError ends the task (finished tasks are
committed already; a rerun resumes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from docsynth.core.errors import DocsynthError

T = TypeVar("T")
WATCH_S = 0.5  # how often the engine's processes are looked at while a call waits


class EngineDiedError(DocsynthError):
    """The engine's process died under a call."""


def engine_processes(llm) -> list:
    """The multiprocessing.Process objects of an LLM's engine core (vLLM's V1 layout), or []
    where the engine runs in this process or the layout is another one."""
    try:
        manager = llm.llm_engine.engine_core.resources.engine_manager
        return list(manager.processes) if manager is not None else []
    except AttributeError:
        return []


def dead(llm, processes: list) -> str | None:
    """Why the engine is dead (naming the process and how it ended), or None while it lives."""
    for p in processes:
        if not p.is_alive():
            code = p.exitcode
            how = (f"killed by signal {-code}" + (" (SIGKILL: the kernel's out-of-memory killer does this when memory runs "
                                                  "out)" if code == -9 else "")) if code is not None and code < 0 \
                else f"exited with status {code}"
            return f"the vLLM engine process {p.name} (pid {p.pid}) {how}"
    try:
        if llm.llm_engine.engine_core.resources.engine_dead:
            return "vLLM reports its engine core dead"
    except AttributeError:
        pass
    return None


def interruptible(call: Callable[[], T]) -> T:
    """call() on a daemon thread, waited for here: Ctrl-C and SIGTERM reach this thread at once.
    Measured: a SIGINT during vLLM 0.32's engine start in the main thread was lost (the start went
    on, or hung for its 5-minute handshake timeout); from this wait it raises at once."""
    return supervised(None, call, "")


def supervised(llm, call: Callable[[], T], what: str) -> T:
    """call() (a request to llm's engine), or EngineDiedError within WATCH_S of its engine dying.
    The call runs on a daemon thread and this one waits, interruptibly."""
    processes = engine_processes(llm) if llm is not None else []
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e

    worker = threading.Thread(target=run, daemon=True, name="docsynth-engine-call")
    worker.start()
    while worker.is_alive():
        worker.join(WATCH_S)
        why = dead(llm, processes) if processes and worker.is_alive() else None
        if why:
            # The call's thread stays blocked on a queue nobody fills; it is a daemon and goes
            # with the process.
            raise _died(why, what)
    if "error" in box:
        error = box["error"]
        # The call may also fail by itself: a request added after vLLM's monitor saw the engine go
        # raises vLLM's EngineDeadError at once (seen in CI, under load). That is the same event.
        if processes and isinstance(error, Exception):
            why = _cause(llm, processes, error)
            if why:
                raise _died(why, what) from None
        raise error
    return box["result"]


def _died(why: str, what: str) -> EngineDiedError:
    return EngineDiedError(f"{why} while {what}; the tasks finished so far are kept: run the same "
                           "command again to resume (if memory ran out, lower generate.cpu.kv_cache_gib "
                           "or the model's size)")


def _cause(llm, processes: list, error: Exception, settle_s: float = 3.0) -> str | None:
    """Why a failed call failed when the engine died under it, else None. vLLM's monitor can flag
    the engine dead a moment before the process is reaped, so the process is looked at for up to
    settle_s: its name and signal say more than vLLM's message."""
    flagged = type(error).__name__ == "EngineDeadError"
    end = time.monotonic() + (settle_s if flagged else 0.0)
    while True:
        why = dead(llm, processes)
        if why and ("process" in why or time.monotonic() >= end):
            return why
        if time.monotonic() >= end:
            return "vLLM reports its engine core dead" if flagged else None
        time.sleep(0.1)
