"""One writer per directory: a command that writes a run, dataset or mixture directory holds its
lock for as long as it runs, and a second one fails at once, naming the holder.

The lock is `DIR/.docsynth.lock`, held with flock(2): the kernel lets go when the holding process
ends, however it ends (a `kill -9`, the OOM killer), so a lock left by a dead process is never
stale; the next command takes it over. The file says who holds it (pid, host, command, since when)
for the message a second writer gets. A process may take a lock it already holds (a run takes its
directory, then its stages take it again).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from docsynth.core.errors import DocsynthError

NAME = ".docsynth.lock"
_HELD: dict[Path, list] = {}  # directory -> [fd, count], for this process


class LockedError(DocsynthError):
    """Another process is writing the directory."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
        return f"pid {info['pid']} on {info['host']} ({info['command']}), since {since}"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def locked(*dirs: Path, create: bool = True) -> Iterator[None]:
    """Hold the lock of each directory while the block runs (a missing directory is made, or with
    create=False left alone: a reader's directory that is not there has nothing to guard);
    LockedError naming the holder if another process has one."""
    with ExitStack() as stack:
        for d in dict.fromkeys(Path(d).resolve() for d in dirs):  # each once, in order
            if create or d.is_dir():
                stack.enter_context(_lock(d))
        yield


@contextmanager
def _lock(d: Path) -> Iterator[None]:
    if d in _HELD:
        _HELD[d][1] += 1
        try:
            yield
        finally:
            _HELD[d][1] -= 1
        return
    d.mkdir(parents=True, exist_ok=True)
    path = d / NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockedError(f"{d} is being written by {_holder(path)}; wait for it to finish, or stop it "
                          "(a lock whose process has ended is taken over by the next command)") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv[:3]) or "python",
            "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    _HELD[d] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[d]
        os.ftruncate(fd, 0)  # the file stays (removing it would race a process about to lock it)
        os.close(fd)
