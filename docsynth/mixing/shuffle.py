"""An external shuffle in bounded memory: rows arrive with their place in the output (a position
0..N-1) and leave shard by shard in order of place.

- `Spill.add` takes rows with their places and shards and hands them, grouped by shard, to a
  writer thread, which shows them to `observe` (if set: the mixer counts its card's statistics
  there, on whole batches) and appends each shard's rows to that shard's spill file, one record
  per batch: the rows' small columns and places as an Arrow IPC message (copied once, by a take),
  then, where rows carry large images, their image bytes, written straight from the decoded
  batch with writev (copied once, by the kernel, into the page cache; a take of them cost the
  scatter's main thread a fifth of its time). Small images go in the message.
  At most `queued` bytes wait for the writer; nothing else is held.
- `Spill.groups` memory-maps one shard's file, puts each record's image bytes back in its
  `images` column without copying them, and orders the rows by place, a row group at a time:
  one-row slices of the map for large rows (no copy: the parquet writer reads them where they
  lie), one take per spilled batch for small ones.
- `Spill.output` gives the file a shard is written to: the spill file of a shard already
  written, written over (on a VM, new page-cache pages cost far more than reused ones).
Memory: the batches waiting for the writer while spilling; one mapped shard (page cache) and one
row group while gathering.
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import resource
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from docsynth.mixing import spillfile
from docsynth.mixing.spillfile import Record, Split, write_record

POS = "__pos"
SPILL_QUEUE_BYTES = 64_000_000  # rows waiting for the spill's writer thread, at most


def _open_files_budget(wanted: int) -> int:
    """How many spill files may be open at once: the soft limit raised toward the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted + 256 > soft and soft < hard:
        soft = min(hard, wanted + 256) if hard != resource.RLIM_INFINITY else wanted + 256
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(16, soft - 256)


class Spill:
    """Rows by shard, appended to one spill file per shard in ROOT by a writer thread.

    A shard's file is a sequence of records (spillfile.py), one per batch added that has rows of
    the shard: the rows' small columns and places, then, for large images, their bytes written
    straight from the batch that was read (copied once, by the kernel, into the page cache). At most
    `max_open` files are open at once (a closed one is reopened to append). With `expect` (the
    bytes a shard's spill should come to), each file is preallocated to it when created;
    `observe`, if given, sees each batch added and the rows of it spilled (repeats included), on
    the writer thread; `conform` makes batches of several schemas (columns only some sources
    have) one when they are gathered."""

    def __init__(self, root: Path, n_shards: int, queued: int = SPILL_QUEUE_BYTES, max_open: int | None = None,
                 expect: int = 0, observe: Callable[[pa.RecordBatch, np.ndarray], None] | None = None,
                 split_min: int | None = None, conform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None) -> None:
        self.root, self.queued, self.expect, self.observe, self.conform = root, queued, expect, observe, conform
        self.split_min = spillfile.SPLIT_MIN_ROW_BYTES if split_min is None else split_min
        self.max_open = max_open or min(n_shards, _open_files_budget(n_shards))
        self.writer = ThreadPoolExecutor(1)  # also removes spill files no longer needed (freeing pages costs time)
        self.pending: deque[tuple[Future, int]] = deque()
        self.pending_bytes = 0
        self.open: OrderedDict[int, int] = OrderedDict()  # shard: its file's descriptor
        self.opened = 0  # files opened (more than the shards: files were closed to make room)
        self.records: dict[int, list[Record]] = {}
        self.rows: dict[int, int] = {}
        self.read: Path | None = None  # a spill file already gathered: its pages are written over (see output)

    def path(self, shard: int) -> Path:
        return self.root / f"{shard:05d}.spill"

    def add(self, rows: pa.RecordBatch, take: np.ndarray, pos: np.ndarray, shard: np.ndarray) -> None:
        """Rows `take` of a batch, with their places and shards, queued for the writer (this waits
        while more than `queued` bytes are waiting). The rows are copied here, grouped by shard:
        where they carry large images, all but the image bytes, and the batch is held until the
        writer has written those from it."""
        if not len(take):
            return
        order = np.argsort(shard, kind="stable")
        take, shard = take[order], shard[order]
        split = Split.of(rows, self.split_min)
        small = (split.small if split else rows).take(pa.array(take)).append_column(POS, pa.array(pos[order]))
        cuts = np.flatnonzero(np.diff(shard)) + 1
        parts = [(int(shard[a]), int(a), int(b - a)) for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(shard)])]
        for s, _, n in parts:
            self.rows[s] = self.rows.get(s, 0) + n
        held = small.nbytes + (rows.nbytes if split else 0)
        while self.pending and (self.pending_bytes + held > self.queued or self.pending[0][0].done()):
            f, n = self.pending.popleft()
            self.pending_bytes -= n
            f.result()
        self.pending.append((self.writer.submit(self._write, rows, take, small, split, parts), held))
        self.pending_bytes += held

    def _write(self, rows: pa.RecordBatch, take: np.ndarray, small: pa.RecordBatch, split: Split | None,
               parts: list[tuple[int, int, int]]) -> None:
        if self.observe is not None:
            self.observe(rows, take)
        blobs = split.blobs(take, small) if split else None
        for s, a, n in parts:
            records = self.records.setdefault(s, [])
            fd = self._fd(s, new=not records)
            records.append(write_record(fd, records[-1].end if records else 0, small.slice(a, n),
                                        blobs(a, n) if blobs else [], split.field if split else None))

    def _fd(self, s: int, new: bool) -> int:
        """The shard's file, open to append (NEW: created now, preallocated)."""
        if s in self.open:
            self.open.move_to_end(s)
            return self.open[s]
        if len(self.open) >= self.max_open:
            os.close(self.open.popitem(last=False)[1])
        fd = os.open(self.path(s), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.opened += 1
        if new and self.expect:
            _preallocate(fd, self.expect)
        self.open[s] = fd
        return fd

    def _close_all(self) -> None:
        while self.open:
            os.close(self.open.popitem()[1])

    def finish(self) -> None:
        """Until every queued row is on disk (raises what writing raised), then close the files."""
        while self.pending:
            f, _ = self.pending.popleft()
            f.result()
        self.pending_bytes = 0
        self.writer.submit(self._close_all).result()

    def close(self, abort: bool = False) -> None:
        """Stop the writer once its queue is done (with abort, after a failure: drop the queue);
        the files left are the caller's to remove."""
        for f, _ in self.pending:
            if abort:
                f.cancel()
            elif not f.cancelled():
                f.exception()  # waits; an error here was already raised where it mattered
        self.pending.clear()
        self.writer.shutdown(wait=True)
        self._close_all()

    def groups(self, shard: int, step: int) -> Iterator[pa.Table]:
        """The shard's rows in order of place, `step` rows per table; the place column dropped.
        The spill file stays until `done(shard)`."""
        with pa.memory_map(str(self.path(shard))) as mm:
            whole = mm.read_buffer()  # zero-copy: the mapped file
            batches = [r.batch(whole) for r in self.records.get(shard, [])]
            pos = np.concatenate([b.column(POS).to_numpy() for b in batches])
            lens = np.array([b.num_rows for b in batches])
            chunk = np.repeat(np.arange(len(batches)), lens)
            row = np.arange(len(pos)) - np.repeat(np.cumsum(lens) - lens, lens)
            order = np.argsort(pos, kind="stable")
            batches = [(self.conform or (lambda x: x))(b.drop_columns([POS])) for b in batches]
            for a in range(0, len(order), step):
                idx = order[a:a + step]
                yield _gather(batches, chunk[idx], row[idx])
            del batches, whole

    def done(self, shard: int) -> None:
        """The shard is written: its spill file is there for `output` to write over (one kept)."""
        if self.read is not None:
            self._remove(self.read)
        self.read = self.path(shard)

    def _remove(self, path: Path) -> None:
        """Remove a spill file in the background (waited for by finish or close)."""
        self.pending.append((self.writer.submit(path.unlink, missing_ok=True), 0))

    def output_room(self, shard: int, groups: int) -> int:
        """More bytes than the shard's parquet can take: it holds the spill's values, their lengths
        and levels, at most twice the spill's bytes, plus the footer's metadata per row group."""
        return 2 * self.path(shard).stat().st_size + (16 << 20) + 4096 * groups

    @contextlib.contextmanager
    def output(self, dest: Path, room: int, reuse: bool = True) -> Iterator[Output]:
        """Where to write DEST. A spill file already gathered is renamed to DEST and written over
        from its start through a memory map of `room` bytes (what is not written is never
        allocated), then cut to what was written; without one, a new file. On a VM, allocating
        page-cache pages for a new file and freeing those of a removed one cost several times
        what writing over pages already held does. Writing past `room` raises OutputFull.
        With reuse=False, always a new file."""
        old, self.read = self.read, None
        if old is not None and not (reuse and _moved(old, dest)):
            self._remove(old)
            old = None
        if old is None:
            with pa.OSFile(str(dest), "wb") as f:
                yield Output(f)
            return
        fd, mm = os.open(dest, os.O_RDWR), None
        try:
            if os.fstat(fd).st_size < room:
                os.ftruncate(fd, room)
            mm = mmap.mmap(fd, room)
            out = Output(pa.FixedSizeBufferWriter(pa.py_buffer(mm)), mm)
            try:
                yield out
            except OSError as e:
                if "out of bounds" in str(e):
                    raise OutputFull(f"{dest}: more than {room} bytes") from e
                raise
            end = out.release()
            mm.close()
            os.ftruncate(fd, end)
        finally:
            if mm is not None and not mm.closed:
                with contextlib.suppress(BufferError):  # after a failure the writer may still hold it
                    mm.close()
            os.close(fd)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate, where there is one."""
    try:
        import ctypes
        f = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    f.argtypes, f.restype = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64], ctypes.c_int
    return f


def _preallocate(fd: int, n: int) -> None:
    """Reserve N bytes of disk for a file about to be appended to, its size unchanged
    (fallocate with FALLOC_FL_KEEP_SIZE): appending then skips the file system's per-page
    reservation of delayed allocation (on ext4, about a third of what writing costs). Only a
    hint: where it cannot be done (not Linux, a file system without it, no room) nothing is."""
    f = _fallocate()
    if f is not None:
        f(fd, 1, 0, n)  # 1: FALLOC_FL_KEEP_SIZE; a failure (-1) is ignored


def _moved(src: Path, dest: Path) -> bool:
    """Rename src to dest; False where it cannot be (another file system: --spill-dir)."""
    try:
        os.replace(src, dest)
    except OSError:
        return False
    return True


class OutputFull(Exception):
    """A shard's parquet outgrew the room it was given in a spill file written over."""


class Output:
    """A shard's output file (`file`, a pyarrow sink). `written()` after each row group tells
    `follow` (if set) how far the file is written, and lets go of the pages of a memory-mapped
    one already written (they stay in the page cache), so they do not count in the process's
    memory."""

    def __init__(self, file: pa.NativeFile, mm: mmap.mmap | None = None) -> None:
        self.file, self.mm, self.dropped = file, mm, 0
        self.follow: Callable[[int], None] | None = None

    def written(self) -> None:
        end = self.file.tell()
        if self.follow is not None:
            self.follow(end)
        if self.mm is not None:
            n = end & ~(mmap.PAGESIZE - 1)
            if n - self.dropped >= 16 << 20:
                self.mm.madvise(mmap.MADV_DONTNEED, 0, n)
                self.dropped = n

    def release(self) -> int:
        """Bytes written; the map is no longer referenced (so it can be closed)."""
        end = self.file.tell()
        self.file.close()
        self.file = None
        return end


def _gather(batches: list[pa.RecordBatch], chunk: np.ndarray, row: np.ndarray) -> pa.Table:
    """Rows (chunk[i], row[i]) of the batches, in that order. Few rows per batch touched (big
    rows): a table of one-row slices of the mapped spill, no copy (the parquet writer reads
    them where they lie). Many (small rows): one take per batch, and one take to order them."""
    touched = np.unique(chunk)
    if len(chunk) <= 4 * len(touched):
        return pa.Table.from_batches([batches[c].slice(r, 1) for c, r in zip(chunk.tolist(), row.tolist())])
    by = np.argsort(chunk, kind="stable")
    starts = np.searchsorted(chunk[by], touched)
    pieces = [batches[c].take(pa.array(row[by[a:b]])) for c, a, b in zip(touched.tolist(), starts, np.r_[starts[1:], len(by)])]
    back = np.empty(len(by), np.int64)
    back[by] = np.arange(len(by))
    return pa.Table.from_batches([pa.concat_batches(pieces).take(pa.array(back))])
