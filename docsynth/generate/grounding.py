"""Is an answer supported by the page text? A cheap, deterministic check: the normalised
answer occurs in the normalised text, else the best fuzzy match against word windows."""

from __future__ import annotations

import unicodedata
from difflib import SequenceMatcher

import regex

_NON_WORD = regex.compile(r"[^\p{L}\p{N}]+")
GROUNDED_AT = 0.8  # fuzzy score from which an answer counts as grounded


def normalise(text: str) -> str:
    """Casefolded words of the text, separated by single spaces (punctuation dropped)."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def grounding_score(answer: str, text: str) -> float:
    """1.0 when the answer's words occur verbatim in the text, else the best similarity
    (0..1) between the answer and any run of the text's words of about the same length."""
    a = normalise(answer)
    if not a:
        return 0.0
    t = normalise(text)
    if f" {a} " in f" {t} ":
        return 1.0
    words = t.split()
    n = len(a.split())
    sm = SequenceMatcher(autojunk=False)
    sm.set_seq2(a)
    best = 0.0
    for k in {max(n - 1, 1), n, n + 1}:
        for i in range(max(len(words) - k + 1, 1)):
            sm.set_seq1(" ".join(words[i:i + k]))
            if sm.real_quick_ratio() > best and sm.quick_ratio() > best:
                best = max(best, sm.ratio())
    return best


def is_grounded(answer: str, text: str, threshold: float = GROUNDED_AT) -> bool:
    return grounding_score(answer, text) >= threshold
