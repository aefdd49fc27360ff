"""Seeded pseudo-random permutations of 0..n-1 that need no memory: a Feistel network with
cycle-walking. `p(i)` and `p.inverse(j)` are computed for whole numpy arrays at once, so the
mixer can place any row of a billion-row mixture without holding a shuffled index in memory."""

from __future__ import annotations

import numpy as np

_ROUNDS = 6
_M64 = (1 << 64) - 1
_FEW = 8  # values left to walk: below this, Python's integers beat numpy's cost per call


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a fast, well-distributed 64-bit hash (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _mix1(x: int) -> int:
    """_mix of one value, in Python integers."""
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class Permutation:
    """A bijection of range(n) determined by (n, seed, *key)."""

    def __init__(self, n: int, seed: int, *key: int) -> None:
        self.n = int(n)
        bits = max(2, int(self.n - 1).bit_length())
        self._half = np.uint64((bits + 1) // 2)
        self._mask = np.uint64((1 << int(self._half)) - 1)
        self._keys = np.random.SeedSequence([seed, *key, self.n]).generate_state(_ROUNDS, dtype=np.uint64)
        self._int = (int(self._half), int(self._mask), [int(k) for k in self._keys])

    def _encrypt1(self, x: int) -> int:
        half, mask, keys = self._int
        left, right = x >> half, x & mask
        for k in keys:
            left, right = right, left ^ (_mix1(right ^ k) & mask)
        return (left << half) | right

    def _decrypt1(self, y: int) -> int:
        half, mask, keys = self._int
        left, right = y >> half, y & mask
        for k in reversed(keys):
            left, right = right ^ (_mix1(left ^ k) & mask), left
        return (left << half) | right

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

    def _walk(self, step, step1, i: np.ndarray) -> np.ndarray:
        # The network permutes 0..2^bits-1 (< 4n); stepping again from a value >= n until it lands
        # below n keeps the map a bijection of 0..n-1 (cycle-walking). The longest walk decides
        # how many steps the whole array takes, so the last few values walk one by one.
        x = step(np.asarray(i, dtype=np.uint64))
        bad = np.flatnonzero(x >= self.n)
        while len(bad) >= _FEW:
            x[bad] = step(x[bad])
            bad = bad[x[bad] >= self.n]
        for j in bad.tolist():
            v = step1(int(x[j]))
            while v >= self.n:
                v = step1(v)
            x[j] = v
        return x.astype(np.int64)

    def __call__(self, i: np.ndarray) -> np.ndarray:
        """Where each index in i goes."""
        return self._walk(self._encrypt, self._encrypt1, i)

    def inverse(self, j: np.ndarray) -> np.ndarray:
        """Which index goes to each position in j."""
        return self._walk(self._decrypt, self._decrypt1, j)
