"""Files written so that a crash never leaves a torn one in place, and sha256 of files (whole,
or following a writer)."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import mmap
import os
import queue
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path


def cache_dir() -> Path:
    """DOCSYNTH_CACHE, else ~/.cache/docsynth: prepared models, hashes, local copies of remote runs."""
    return Path(os.environ.get("DOCSYNTH_CACHE") or Path.home() / ".cache" / "docsynth")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call write(tmp) then rename tmp over path; tmp is removed on any failure."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE: each name then holds what the
    other held, with no moment where either is missing). False where the system or filesystem
    cannot (not Linux, NFS, old kernels): the caller falls back to two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _hash_range(h, fd: int, start: int, end: int, step: int = 16 << 20) -> None:
    """Add bytes start..end of an open file to h, from memory maps of `step` bytes (no copy out of
    the page cache; each is unmapped at once, so its pages do not count in the process's memory)."""
    while start < end:
        a = start - start % mmap.ALLOCATIONGRANULARITY
        n = min(end, a + step) - a
        with mmap.mmap(fd, n, access=mmap.ACCESS_READ, offset=a) as m, memoryview(m) as mv:
            h.update(mv[start - a:])
        start = a + n


def file_sha256(path: Path) -> str:
    """A file's sha256 (see _hash_range)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        _hash_range(h, f.fileno(), 0, os.fstat(f.fileno()).st_size)
    return h.hexdigest()


class FollowingSha256:
    """The sha256 of a file while it is being written, on a thread of `pool`: `start(fd)` begins,
    the writer says how far the file is written (`advance`) and where it ends (`finish`);
    `result()` is the digest. Hashing follows the writing, so no whole file is left to hash once
    the last one is written. Bytes are hashed from the page cache, `min_step` or more at a time.
    Keep the object where a failure handler can `abandon` it before starting it: a hash started
    and then lost (say, to a Ctrl-C between the two) would leave its thread waiting."""

    def __init__(self, pool: Executor, min_step: int = 4 << 20) -> None:
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._min_step = min_step
        self._pool = pool
        self._future: Future | None = None

    def start(self, fd: int) -> None:
        """Hash the file open as `fd` (open for reading; taken over and closed when done, so the
        file may be renamed meanwhile)."""
        self._future = self._pool.submit(self._run, fd)

    def advance(self, written: int) -> None:
        self._q.put((False, written))

    def finish(self, size: int) -> None:
        self._q.put((True, size))

    def abandon(self) -> None:
        """The file was not finished: stop (result() is then None)."""
        self._q.put(None)

    def result(self) -> str | None:
        return None if self._future is None else self._future.result()

    def _run(self, fd: int) -> str | None:
        try:
            h, done = hashlib.sha256(), 0
            while True:
                item = self._q.get()
                while item is not None and not item[0]:  # only the latest offset matters
                    try:
                        item = self._q.get_nowait()
                    except queue.Empty:
                        break
                if item is None:
                    return None
                end, upto = item
                if end or upto - done >= self._min_step:
                    _hash_range(h, fd, done, upto)
                    done = upto
                if end:
                    return h.hexdigest()
        finally:
            os.close(fd)
