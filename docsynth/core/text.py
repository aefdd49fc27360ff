"""Is an answer supported by the page text? A cheap, deterministic check: the normalised
answer occurs in the normalised text, else the best fuzzy match against word windows."""

from __future__ import annotations

import unicodedata
from difflib import SequenceMatcher

import regex

_NON_WORD = regex.compile(r"[^\p{L}\p{N}]+")


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


def is_grounded(answer: str, text: str, threshold: float) -> bool:
    return grounding_score(answer, text) >= threshold


# Words too common to say anything about support (English, French, German).
_STOP = set("""a an the of to in on at by for from with and or but is are was were be been it its this that
these those as which who whom what when where why how do does did has have had not no yes le la les un une des du de
et ou est sont à au aux en par pour sur dans der die das ein eine und oder ist sind im in zu von mit für auf""".split())


def support_score(answer: str, text: str) -> float:
    """How well the text supports an answer: its grounding_score, or the share of the answer's
    content words (stop words left out) that occur in the text, whichever is higher. The
    second lets a sentence-long answer built from the document's words through. Numbers are
    strict: the score is at most the share of the answer's numbers that the text contains, so
    "250,000" is not supported by "412,000" however alike the strings look."""
    best = grounding_score(answer, text)
    if best >= 1.0:
        return best
    vocab = set(normalise(text).split())
    words = [w for w in normalise(answer).split() if w not in _STOP]
    if words:
        best = max(best, sum(w in vocab for w in words) / len(words))
    numbers = _numbers(answer)
    if numbers:
        known = _numbers(text)
        best = min(best, sum(n in known for n in numbers) / len(numbers))
    return best


_NUMBER = regex.compile(r"\d+(?:[,.' \u00a0\u202f]\d{3})*(?:[.,]\d+)?")


def _numbers(text: str) -> list[str]:
    """The numbers in a text, digits only ("412,000" and "412000" are the same number)."""
    return [regex.sub(r"\D", "", m) for m in _NUMBER.findall(text)]
