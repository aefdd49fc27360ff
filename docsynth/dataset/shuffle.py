"""An external shuffle in bounded memory: rows arrive with their place in the output (a position
0..N-1) and leave in order of place, shard by shard, never more than a buffer in memory.

- `Spill.add` takes rows with their places and shards. Rows are held up to a byte budget; then,
  for every shard, the held rows are sorted by place and written as one run (an Arrow IPC
  stream file, uncompressed: fast to write and read, and usually still in the page cache).
- `merge_runs` reads one shard's runs side by side, a few MB of each at a time, and yields its
  rows in order of place in groups (a k-way merge; each group is interleaved with one argsort).
Memory: the budget while spilling; while merging, a batch per run plus one group.
"""

from __future__ import annotations

import queue
import resource
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

POS = "__pos"
_RUN_BATCH_BYTES = 2_000_000  # runs are written in batches of about this size, the merge's read unit


class Spill:
    """Rows by shard, spilled to sorted runs in ROOT when the held bytes pass the budget."""

    def __init__(self, root: Path, budget: int) -> None:
        self.root, self.budget = root, budget
        self.writer = ThreadPoolExecutor(1)  # runs are written while the next rows are read
        self.writing: Future | None = None
        self.held: dict[int, list[pa.RecordBatch]] = {}
        self.held_bytes = 0
        self.flushes = 0
        self.rows: dict[int, int] = {}
        self.kept: dict[int, pa.Table] = {}

    def add(self, rows: pa.RecordBatch, take: np.ndarray, pos: np.ndarray, shard: np.ndarray) -> None:
        """Rows `take` of a batch (with their places and shards) into the buffer: one copy, sorted
        by shard and place, kept as one slice per shard."""
        order = np.lexsort((pos, shard))
        batch = rows.take(pa.array(take[order])).append_column(POS, pa.array(pos[order]))
        shard = shard[order]
        cuts = np.flatnonzero(np.diff(shard)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(shard)]):
            s = int(shard[a])
            self.held.setdefault(s, []).append(batch.slice(a, b - a))
            self.rows[s] = self.rows.get(s, 0) + int(b - a)
        self.held_bytes += batch.nbytes
        if self.held_bytes >= self.budget:
            self.flush()

    def flush(self, keep: bool = False) -> None:
        """Write the held rows as one sorted run per shard (in the background; the previous
        flush is waited for, so at most two buffers exist); with keep, hold the runs in memory
        instead (the last flush: its rows are merged next, so writing them would be a waste)."""
        runs = {}
        for s, batches in self.held.items():
            t = pa.Table.from_batches(batches)  # slices sorted by place: merge them into one run
            if len(batches) > 1:
                t = t.combine_chunks().take(pa.array(np.argsort(t.column(POS).to_numpy(), kind="stable")))
            runs[s] = t
        self.wait()
        if keep:
            self.kept = runs
        else:
            self.writing = self.writer.submit(self._write, runs, self.flushes)
        self.held.clear()
        self.held_bytes = 0
        self.flushes += 1

    def _write(self, runs: dict[int, pa.Table], flush: int) -> None:
        for s, t in runs.items():
            chunk = max(1, int(_RUN_BATCH_BYTES * t.num_rows / max(t.nbytes, 1)))
            with pa.OSFile(str(self.root / f"{s:05d}-{flush:05d}.arrow"), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
                w.write_table(t, max_chunksize=chunk)

    def wait(self) -> None:
        """Until the runs being written are on disk (raises what writing them raised)."""
        if self.writing is not None:
            self.writing, w = None, self.writing
            w.result()

    def close(self) -> None:
        self.wait()
        self.writer.shutdown()

    def runs(self, shard: int) -> list[Path | pa.Table]:
        """A shard's runs: its spill files, and its rows still in memory (given up here)."""
        kept = self.kept.pop(shard, None)
        return sorted(self.root.glob(f"{shard:05d}-*.arrow")) + ([kept] if kept is not None else [])


class _Run:
    """One sorted run (a spill file, read a batch at a time, or a table in memory)."""

    def __init__(self, run: Path | pa.Table) -> None:
        self.reader = iter(run.to_batches() if isinstance(run, pa.Table) else pa.ipc.open_stream(pa.OSFile(str(run))))
        self.pending: list[pa.RecordBatch] = []
        self.pos = np.empty(0, np.int64)
        self.done = False

    def below(self, limit: int) -> list[pa.RecordBatch]:
        """The run's next rows whose place is below limit."""
        while not self.done and (not len(self.pos) or self.pos[-1] < limit):
            try:
                batch = next(self.reader)
            except StopIteration:
                self.done = True
                break
            self.pending.append(batch)
            self.pos = np.concatenate([self.pos, batch.column(POS).to_numpy()])
        n = int(np.searchsorted(self.pos, limit))
        self.pos = self.pos[n:]
        out = []
        while n:
            head = self.pending[0]
            if head.num_rows <= n:
                out.append(self.pending.pop(0))
                n -= head.num_rows
            else:
                out.append(head.slice(0, n))
                self.pending[0] = head.slice(n)
                n = 0
        return out


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """The items of an iterator produced by a thread, up to depth ahead: pyarrow's reading,
    decoding and writing release the GIL, so producing overlaps with consuming on another core."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for x in items:
                if stop.is_set():
                    return
                q.put((x, None))
            q.put((done, None))
        except BaseException as e:  # handed to the consumer, raised there
            q.put((done, e))

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    try:
        while True:
            x, err = q.get()
            if err is not None:
                raise err
            if x is done:
                return
            yield x
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def merge_runs(paths: list[Path | pa.Table], lo: int, hi: int, step: int) -> Iterator[pa.Table]:
    """The rows of the runs with places lo..hi-1, in order of place, `step` places per table
    (fewer rows where places are missing); the place column is dropped."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if len(paths) + 64 > soft and soft < hard:  # one open file per run
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, len(paths) + 1024), hard))
    runs = [_Run(p) for p in paths]
    for a in range(lo, hi, step):
        batches = [b for r in runs for b in r.below(min(a + step, hi))]
        if not batches:
            continue
        t = pa.Table.from_batches(batches)
        order = np.argsort(t.column(POS).to_numpy(), kind="stable")
        yield t.drop_columns([POS]).combine_chunks().take(pa.array(order))
