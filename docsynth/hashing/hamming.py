"""Find stored 64-bit hashes within a Hamming distance of queries: multi-index hashing.

The 64 bits are cut into 4 chunks of 16. Two hashes within distance r agree to within
r // 4 bits on at least one chunk (pigeonhole), so a query looks up, in each chunk's table, every
16-bit value within r // 4 of its own chunk (137 values for r up to 11), and only those
candidates are compared in full. Each table is the stored ids sorted by that chunk, with the
start of every one of the 65,536 values, plus a copy of the hashes in that order (so a probe's
candidates are side by side in memory): 12 bytes per hash per chunk plus 0.5 MB, so 1M hashes
take 8 + 48 + 2 MB, and the arrays persist as .npy files that load memory-mapped.
Measured by bench/decontam.py against a brute-force scan of the same hashes.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

CHUNKS = 4
BITS = 16
MAX_DISTANCE = CHUNKS * 3 + 3  # up to 3 bits per chunk: 697 probes a chunk; beyond it, scan instead
_FILES = ("hashes", "ids", "order", "starts", "table")
_BATCH = 512  # queries looked up together: bounds the candidate arrays (about 4M entries at 1M hashes)


def _chunk(h: np.ndarray, j: int) -> np.ndarray:
    return ((h >> np.uint64(BITS * j)) & np.uint64((1 << BITS) - 1)).astype(np.int64)


def _flips(radius: int) -> np.ndarray:
    """Every 16-bit mask with at most `radius` bits set."""
    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(BITS), k)]
    return np.array(masks, dtype=np.int64)


class HammingIndex:
    """Stored hashes (uint64), each with an int64 id; `near` finds those within a distance."""

    def __init__(self, hashes: np.ndarray, ids: np.ndarray, order: np.ndarray, starts: np.ndarray,
                 table: np.ndarray) -> None:
        self.hashes, self.ids, self.order, self.starts, self.table = hashes, ids, order, starts, table

    @classmethod
    def build(cls, hashes: np.ndarray, ids: np.ndarray | None = None) -> HammingIndex:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        ids = np.arange(len(hashes), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        order = np.empty((CHUNKS, len(hashes)), dtype=np.int32 if len(hashes) < 2**31 else np.int64)
        starts = np.empty((CHUNKS, (1 << BITS) + 1), dtype=np.int64)
        table = np.empty((CHUNKS, len(hashes)), dtype=np.uint64)
        for j in range(CHUNKS):
            c = _chunk(hashes, j)
            order[j] = np.argsort(c, kind="stable")
            starts[j] = np.searchsorted(c[order[j]], np.arange((1 << BITS) + 1))
            table[j] = hashes[order[j]]
        return cls(hashes, ids, order, starts, table)

    def __len__(self) -> int:
        return len(self.hashes)

    def near(self, queries: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, stored id, distance) of every stored hash within max_distance of a query,
        sorted by query, then distance, then id."""
        queries = np.asarray(queries, dtype=np.uint64)
        if not len(self) or not len(queries):
            return (np.empty(0, np.int64),) * 2 + (np.empty(0, np.int16),)
        if max_distance > MAX_DISTANCE:
            raise ValueError(f"max_distance {max_distance} is over {MAX_DISTANCE}, the most this index looks up")
        flips = _flips(max_distance // CHUNKS)
        parts = [self._near(queries[i:i + _BATCH], i, flips, max_distance) for i in range(0, len(queries), _BATCH)]
        q, s, d = (np.concatenate(x) for x in zip(*parts))
        o = np.lexsort((self.ids[s], d, q))
        return q[o], np.asarray(self.ids[s][o], dtype=np.int64), d[o]

    def _near(self, queries: np.ndarray, first: int, flips: np.ndarray, max_distance: int):
        found_q, found_s = [], []
        for j in range(CHUNKS):
            probe = (_chunk(queries, j)[:, None] ^ flips[None, :]).ravel()  # (queries x flips)
            lo, hi = self.starts[j][probe], self.starts[j][probe + 1]
            n = hi - lo
            total = int(n.sum())
            if not total:
                continue
            qi = np.repeat(np.repeat(np.arange(len(queries)), len(flips)), n)
            # positions lo..hi-1 of each probe, flattened without a Python loop
            pos = np.arange(total) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
            # compare in full before anything else, on the chunk's own sorted copy of the hashes
            # (a probe's candidates are side by side there): most candidates are far, and
            # dropping them first keeps the de-duplication small (bench/decontam.py)
            near = np.bitwise_count(queries[qi] ^ self.table[j][pos]) <= max_distance
            found_q.append(qi[near])
            found_s.append(np.asarray(self.order[j][pos[near]], dtype=np.int64))
        if not found_q:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int16)
        pair = np.unique(np.concatenate(found_q) * len(self) + np.concatenate(found_s))  # found through two chunks: once
        q, s = pair // len(self), pair % len(self)
        return q + first, s, np.bitwise_count(queries[q] ^ self.hashes[s]).astype(np.int16)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            np.save(folder / f"{name}.npy", getattr(self, name))

    @classmethod
    def load(cls, folder: Path) -> HammingIndex:
        """The arrays memory-mapped: a lookup touches only the pages it reads."""
        get = lambda name: np.load(folder / f"{name}.npy", mmap_mode="r")  # noqa: E731
        return cls(*(get(name) for name in _FILES))
