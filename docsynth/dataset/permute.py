"""Seeded pseudo-random permutations of 0..n-1 that need no memory: a Feistel network with
cycle-walking. `p(i)` and `p.inverse(j)` are computed for whole numpy arrays at once, so the
mixer can place any row of a billion-row mixture without holding a shuffled index in memory."""

from __future__ import annotations

import numpy as np

_ROUNDS = 6


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-distributed 64-bit hash (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Permutation:
    """A bijection of range(n) determined by (n, seed, *key)."""

    def __init__(self, n: int, seed: int, *key: int) -> None:
        self.n = int(n)
        bits = max(2, int(self.n - 1).bit_length())
        self._half = np.uint64((bits + 1) // 2)
        self._mask = np.uint64((1 << int(self._half)) - 1)
        self._keys = np.random.SeedSequence([seed, *key, self.n]).generate_state(_ROUNDS, dtype=np.uint64)

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        left, right = x >> self._half, x & self._mask
        for k in self._keys:
            left, right = right, left ^ (_mix(right ^ k) & self._mask)
        return (left << self._half) | right

    def _decrypt(self, y: np.ndarray) -> np.ndarray:
        left, right = y >> self._half, y & self._mask
        for k in self._keys[::-1]:
            left, right = right ^ (_mix(left ^ k) & self._mask), left
        return (left << self._half) | right

    def _walk(self, step, i: np.ndarray) -> np.ndarray:
        # The network permutes 0..2^bits-1 (< 4n); stepping again from a value >= n until it lands
        # below n keeps the map a bijection of 0..n-1 (cycle-walking).
        x = step(np.asarray(i, dtype=np.uint64))
        bad = x >= self.n
        while bad.any():
            x[bad] = step(x[bad])
            bad = x >= self.n
        return x.astype(np.int64)

    def __call__(self, i: np.ndarray) -> np.ndarray:
        """Where each index in i goes."""
        return self._walk(self._encrypt, i)

    def inverse(self, j: np.ndarray) -> np.ndarray:
        """Which index goes to each position in j."""
        return self._walk(self._decrypt, j)
