"""MinHash signatures of documents' text, and LSH bands to find the similar ones.

Written on numpy rather than taken from datasketch: it is about 30 lines, docsynth needs one
signature per document in the ingest workers (where a dependency would ship to every worker and
Ray node), and the signature must be the same bytes in every process and release (datasketch
documents its permutations as seeded from numpy's legacy RNG, which can change with numpy).

A document's shingles are its normalised words in runs of `shingle` (docsynth.core.text), over
all its pages in order; each is hashed with blake2b (stable across processes) to 31 bits.
Signature k is the minimum over shingles of (a_k * h + b_k) mod p, p the Mersenne prime
2^31 - 1 (so a_k * h fits in 64 bits), with a_k, b_k from a fixed seed. The share of equal entries of two signatures estimates the Jaccard
similarity of their shingle sets. Bands of `rows` entries hashed together find candidate
pairs: two documents of similarity s share a band with probability 1 - (1 - s^rows)^bands.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np

from docsynth.core.text import normalise

PERMS = 64
SHINGLE = 5  # words per shingle
_P = np.uint64((1 << 31) - 1)
_rng = np.random.Generator(np.random.PCG64(20261127))
_A = _rng.integers(1, (1 << 31) - 1, PERMS, dtype=np.uint64)[:, None]
_B = _rng.integers(0, (1 << 31) - 1, PERMS, dtype=np.uint64)[:, None]
_BLOCK = 8192  # shingles per step: bounds the (PERMS x block) work array to 4 MB


def signature(texts: list[str], shingle: int) -> np.ndarray | None:
    """The MinHash signature (PERMS uint32) of a document's pages; None for one with no words."""
    words = [w for t in texts for w in normalise(t).split()]
    if not words:
        return None
    grams = {" ".join(words[i:i + shingle]) for i in range(max(len(words) - shingle + 1, 1))}
    h = np.fromiter((int.from_bytes(blake2b(g.encode(), digest_size=8).digest(), "little") for g in grams),
                    dtype=np.uint64, count=len(grams)) % _P
    out = np.full(PERMS, _P, dtype=np.uint64)
    for i in range(0, len(h), _BLOCK):
        out = np.minimum(out, ((_A * h[None, i:i + _BLOCK] + _B) % _P).min(axis=1))
    return out.astype(np.uint32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The estimated Jaccard similarity of two signatures."""
    return float((a == b).mean())


def band_keys(sig: np.ndarray, bands: int) -> list[bytes]:
    """One key per band of the signature (band number included, so bands never collide)."""
    rows = len(sig) // bands
    return [bytes([i]) + sig[i * rows:(i + 1) * rows].tobytes() for i in range(bands)]
