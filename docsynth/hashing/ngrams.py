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
    """Stored texts as n-gram hash sets; `similar` finds those a query overlaps enough.

    Two layouts of the same n-grams: sorted by hash (each n-gram's postings, to find candidates)
    and by item (each text's own set, to count what a candidate shares). A query looks up only its
    rarest n-grams, as many as a text could miss and still reach the overlap (prefix filtering),
    so "what is the" (in a third of 100,000 questions) is never a posting list to walk; the
    candidates are then counted exactly (bench/decontam.py: 275 -> 19,500 lookups/s against 100,000
    questions).
    """

    def __init__(self, grams: np.ndarray, items: np.ndarray, sizes: np.ndarray, own: np.ndarray,
                 offsets: np.ndarray) -> None:
        self.grams, self.items, self.sizes, self.own, self.offsets = grams, items, sizes, own, offsets

    @classmethod
    def build(cls, texts: list[np.ndarray]) -> TextIndex:
        """From each stored text's ngram_hashes; item i is texts[i]."""
        sizes = np.array([len(t) for t in texts], dtype=np.int64)
        own = np.concatenate(texts).astype(np.uint64) if texts else np.empty(0, np.uint64)
        items = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
        o = np.argsort(own, kind="stable")
        return cls(own[o], items[o], sizes, own, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.sizes)

    def similar(self, query: np.ndarray, min_overlap: float) -> list[tuple[int, float]]:
        """(item, overlap) of the stored texts whose overlap with the query is at least
        min_overlap, best first."""
        if not len(query) or not len(self.grams):
            return []
        lo = np.searchsorted(self.grams, query, "left")
        n = np.searchsorted(self.grams, query, "right") - lo
        # overlap <= shared / |query|: a text reaching it shares at least `need` of the query's
        # n-grams, so it holds one of any len(query) - need + 1 of them: look up the rarest
        need = max(1, int(np.ceil(min_overlap * len(query) - 1e-9)))
        rare = np.argsort(n, kind="stable")[:len(query) - need + 1]
        lo, n = lo[rare], n[rare]
        if not n.any():
            return []
        pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        cands = np.unique(self.items[pos])
        # count exactly what each candidate shares: its own n-grams, looked up in the query's
        starts, ends = self.offsets[cands], self.offsets[cands + 1]
        k = ends - starts
        at = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k) + np.repeat(starts, k)
        shared = np.bincount(np.repeat(np.arange(len(cands)), k), weights=np.isin(self.own[at], query),
                             minlength=len(cands))
        overlap = shared / np.maximum(self.sizes[cands], len(query))
        keep = overlap >= min_overlap - 1e-9
        items, overlap = cands[keep], overlap[keep]
        order = np.lexsort((items, -overlap))
        return [(int(i), round(float(o), 3)) for i, o in zip(items[order], overlap[order])]
