"""Normalised word n-grams of short texts (questions, answers), and finding stored texts that
share most of them.

Texts are normalised as everywhere in docsynth (docsynth.core.text.normalise: NFKC, casefold,
punctuation dropped), cut into word n-grams, and each n-gram hashed to 64 bits with blake2b
(deterministic across processes, unlike Python's hash). A text shorter than n words is one
n-gram: itself. The overlap of two texts is |shared| / max(|a|, |b|) over their distinct
n-grams: a copy with a word changed keeps most of its n-grams, while a short generic question
("what is the date") inside a longer one does not count as a copy of it.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np

from docsynth.core.text import normalise


def ngram_hashes(text: str, n: int) -> np.ndarray:
    """The distinct n-gram hashes of a text (uint64, sorted); empty for a text with no words."""
    words = normalise(text).split()
    grams = {" ".join(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))} if words else set()
    return np.unique(np.array([int.from_bytes(blake2b(g.encode(), digest_size=8).digest(), "little")
                               for g in grams], dtype=np.uint64))


class TextIndex:
    """Stored texts as n-gram hash sets; `similar` finds those a query overlaps enough."""

    def __init__(self, grams: np.ndarray, items: np.ndarray, sizes: np.ndarray) -> None:
        self.grams, self.items, self.sizes = grams, items, sizes

    @classmethod
    def build(cls, texts: list[np.ndarray]) -> TextIndex:
        """From each stored text's ngram_hashes; item i is texts[i]."""
        sizes = np.array([len(t) for t in texts], dtype=np.int64)
        grams = np.concatenate(texts) if texts else np.empty(0, np.uint64)
        items = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
        o = np.argsort(grams, kind="stable")
        return cls(grams[o], items[o], sizes)

    def __len__(self) -> int:
        return len(self.sizes)

    def similar(self, query: np.ndarray, min_overlap: float) -> list[tuple[int, float]]:
        """(item, overlap) of the stored texts whose overlap with the query is at least
        min_overlap, best first."""
        if not len(query) or not len(self.grams):
            return []
        lo = np.searchsorted(self.grams, query, "left")
        hi = np.searchsorted(self.grams, query, "right")
        n = hi - lo
        if not n.any():
            return []
        pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        items, shared = np.unique(self.items[pos], return_counts=True)
        overlap = shared / np.maximum(self.sizes[items], len(query))
        keep = overlap >= min_overlap
        order = np.lexsort((items[keep], -overlap[keep]))
        return [(int(i), round(float(o), 3)) for i, o in zip(items[keep][order], overlap[keep][order])]
