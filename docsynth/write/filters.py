"""Filters over QA pairs: predicates that keep a pair or drop it with a reason.

Each filter is a small class built from its recipe section, called as
`filter(pair, kept) -> True | (False, reason)`, where `kept` holds the pairs of the same
sample kept so far (for checks across a sample, like near-duplicates). The reason's first
word, before ":", is the filter's name, which is what runs count by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from difflib import SequenceMatcher

import regex

from docsynth.core.text import normalise, support_score
from docsynth.config.recipe import (CodeFilter, FilterConfig, GroundedFilter, InjectionFilter, LanguageFilter,
                                  LengthFilter, MinRatingFilter, NearDuplicatesFilter, PluginFilter,
                                  UnanswerableFilter, VerifiedFilter)
from docsynth.write.injection import PageParts, page_parts, planted

Verdict = bool | tuple[bool, str]


@dataclass(slots=True)
class Pair:
    """One question and answer, with the text of the sample they were asked about."""

    question: str
    answer: str
    text: str
    verified: bool | None = None  # the verify stage's round trip: None where not checked
    check: str = ""  # its reason
    ratings: dict[str, int | None] = dataclass_field(default_factory=dict)  # the judge's, by axis (RATING_AXES)
    template: str = ""  # the prompt template the pair was generated with
    checks: dict | None = None  # the verify stage's checks, one verdict each (docsynth.core.records.CHECK_NAMES)
    evidence: dict | None = None  # an answer-first pair's span (docsynth.core.records.EVIDENCE)


# Patterns that mark code in an answer, each with the reason it gives. Prose that merely
# mentions code words ("the code of conduct", "the function of the board") matches none.
_CODE = [
    ("code fence", regex.compile(r"```|~~~")),
    ("function or class definition", regex.compile(
        r"(?m)^\s*(?:async\s+)?(?:def|class)\s+[A-Za-z_]\w*\s*[(:]|\bfunction\s*[A-Za-z_$]*\s*\([^)]*\)\s*\{"
        r"|\((?:[A-Za-z_]\w*(?:,\s*)?)*\)\s*=>|\b(?:public|private|protected|static)\s+[\w<>\[\]]+\s+\w+\s*\(")),
    ("import or include", regex.compile(
        r"(?m)^\s*(?:#include\s*[<\"]|import\s+[\w.]+(?:\s+as\s+\w+)?\s*;?\s*$|from\s+[\w.]+\s+import\s+[\w*, ]+$"
        r"|(?:const|let|var)\s+\w+\s*=\s*require\()")),
    ("statement ending in a semicolon", regex.compile(r"(?m)^[^\n]*[=(){}\[\]][^\n]*;\s*$")),
    ("method call", regex.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\([^()\n]*\)\s*[;{]?")),
    ("markup", regex.compile(r"</?[A-Za-z][\w-]*(?:\s+[\w:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*/?>")),
    ("shell command", regex.compile(
        r"(?m)^\s*\$\s+\S|\b(?:sudo|apt-get|apt|pip3?|npm|yarn|brew|conda)\s+(?:install|add|update)\b"
        r"|\|\s*(?:grep|awk|sed|xargs|sort|uniq|wc)\b|\b(?:chmod|chown|curl|wget)\s+-?\w")),
    ("SQL", regex.compile(r"\bSELECT\b[^\n]+\bFROM\b|\bINSERT\s+INTO\b|\bCREATE\s+TABLE\b")),
]
_CODE_CHARS = regex.compile(r"[{}\[\];=<>|&$\\]")


class Code:
    """Drops answers (and questions) that contain code: fences, definitions, imports, statements,
    calls, markup, shell commands, SQL, or a high density of code punctuation."""

    def __init__(self, cfg: CodeFilter) -> None:
        self.cfg = cfg

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        for field, text in (("answer", pair.answer), ("question", pair.question)):
            for why, pattern in _CODE:
                if pattern.search(text):
                    return False, f"code: {why} in the {field}"
            if len(text) >= 20 and len(_CODE_CHARS.findall(text)) / len(text) > self.cfg.max_symbol_ratio:
                return False, f"code: code punctuation in the {field}"
        return True


_UNANSWERABLE = regex.compile(
    r"\bunanswerable\b|\bnot\s+answerable\b"
    r"|\b(?:cannot|can't|can\s+not|could\s+not|couldn't)\s+(?:be\s+)?(?:answer(?:ed)?|determined?|found|inferred|known|tell)\b"
    r"|\b(?:not|never)\s+(?:\w+ly\s+)?(?:mentioned|stated|specified|provided|given|available|included|indicated"
    r"|listed|found|disclosed|present|shown|addressed|covered|described|discussed)\b[^.]{0,40}?"
    r"\b(?:document|text|passage|context|page|excerpt|report|information\s+(?:provided|given))\b"
    r"|\b(?:no|insufficient|not\s+enough)\s+(?:information|data|details|mention|indication)\b"
    r"|\b(?:does|do|did)\s*(?:not|n't)\s+(?:say|mention|specify|state|provide|include|indicate|contain)\b"
    r"|\b(?:not|im)possible\s+to\s+(?:determine|answer|tell|know)\b|\bunclear\s+from\b"
    r"|\bi\s+(?:don't|do\s+not)\s+know\b|^\s*(?:unknown|n/?a|none|not\s+applicable|no\s+answer)\s*\.?\s*$"
    r"|\bnon\s+(?:mentionn|précis|indiqu)é|\bne\s+(?:mentionne|précise|indique)\s+pas\b"
    r"|\bnicht\s+(?:erwähnt|angegeben|genannt|bekannt)\b|\bkeine\s+(?:Angabe|Information)",
    regex.IGNORECASE)


class Unanswerable:
    """Drops answers that say the question cannot be answered, in any of the usual wordings."""

    def __init__(self, cfg: UnanswerableFilter) -> None:
        extra = [regex.escape(p) for p in cfg.extra_phrases]
        self.extra = regex.compile("|".join(extra), regex.IGNORECASE) if extra else None

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        m = _UNANSWERABLE.search(pair.answer) or (self.extra.search(pair.answer) if self.extra else None)
        return (False, f"unanswerable: '{m.group().strip()}'") if m else True


class Length:
    """Drops questions or answers outside the recipe's character bounds."""

    def __init__(self, cfg: LengthFilter) -> None:
        self.cfg = cfg

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        c = self.cfg
        for field, text, lo, hi in (("question", pair.question, c.min_question_chars, c.max_question_chars),
                                    ("answer", pair.answer, c.min_answer_chars, c.max_answer_chars)):
            n = len(text.strip())
            if n < lo:
                return False, f"length: {field} shorter than {lo} characters"
            if n > hi:
                return False, f"length: {field} longer than {hi} characters"
        return True


class NearDuplicates:
    """Drops a question that is the same as, or nearly the same as, one kept earlier in its sample."""

    def __init__(self, cfg: NearDuplicatesFilter) -> None:
        self.threshold = cfg.threshold

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        q = normalise(pair.question)
        for other in kept:
            o = normalise(other.question)
            if q == o:
                return False, "near_duplicates: same question as an earlier pair"
            sm = SequenceMatcher(None, q, o, autojunk=False)
            if sm.real_quick_ratio() >= self.threshold and sm.quick_ratio() >= self.threshold \
                    and sm.ratio() >= self.threshold:
                return False, f"near_duplicates: question {sm.ratio():.2f} similar to an earlier one"
        return True


class Language:
    """Drops pairs whose language (detected on question and answer together) is not allowed."""

    def __init__(self, cfg: LanguageFilter) -> None:
        from docsynth.core.errors import MissingDependencyError

        try:
            from langdetect import DetectorFactory, detect_langs
        except ImportError:
            raise MissingDependencyError("the language filter needs langdetect: pip install langdetect") from None
        DetectorFactory.seed = 0  # langdetect samples; a fixed seed makes it deterministic
        self.detect, self.cfg = detect_langs, cfg

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        text = f"{pair.question} {pair.answer}"
        if len(regex.sub(r"[^\p{L}]", "", text)) < self.cfg.min_letters:
            return True  # too short to tell
        from langdetect.lang_detect_exception import LangDetectException

        try:
            best = self.detect(text)[0]
        except LangDetectException:
            return True
        if best.lang not in self.cfg.allowed:
            return False, f"language: {best.lang} not in {', '.join(self.cfg.allowed)}"
        return True


_YES_NO = regex.compile(r"^\s*(?:yes|no|oui|non|ja|nein|sí|si)\b[\s,.!:;-]*", regex.IGNORECASE)


class Grounded:
    """Drops answers the sample's text does not support: neither found in it (exactly or by a
    fuzzy match) nor made of words it contains. A bare yes/no is judged by what follows it."""

    def __init__(self, cfg: GroundedFilter) -> None:
        self.min_score, self.skip = cfg.min_score, set(cfg.skip_templates)

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        if pair.template in self.skip:
            return True  # read off the image: the text layer need not hold it
        answer = _YES_NO.sub("", pair.answer, count=1)
        if not normalise(answer):
            return True  # "Yes." / "No": nothing to look for
        score = support_score(answer, pair.text)
        if score < self.min_score:
            return False, f"grounded: answer not supported by the text (score {score:.2f})"
        return True


class Injection:
    """Drops pairs the page planted (docsynth.write.injection): copied from its Q/A list or a
    passage addressing the model and not supported by the rest of the page, addressing the model
    themselves, or with a link the rest of the page lacks."""

    def __init__(self, cfg: InjectionFilter) -> None:
        self.qa_blocks = cfg.qa_blocks
        self._parts: tuple[str, PageParts] | None = None  # the last sample's: its pairs come together

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        if self._parts is None or self._parts[0] is not pair.text:
            self._parts = (pair.text, page_parts(pair.text, self.qa_blocks))
        why = planted(pair.question, pair.answer, self._parts[1])
        return (False, f"injection: {why}") if why else True


class Verified:
    """Drops pairs whose round trip disagreed (the verify stage's verdicts, docsynth.core.agree),
    and unchecked ones if asked."""

    def __init__(self, cfg: VerifiedFilter) -> None:
        self.drop_unchecked = cfg.unchecked == "drop"

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        if pair.verified is False:
            return False, f"verified: the verifier's answer disagrees: {pair.check}"
        if pair.verified is None and self.drop_unchecked:
            return False, f"verified: not checked ({pair.check or 'no verify stage ran'})"
        return True


class MinRating:
    """Drops pairs the judge rated below a floor on any axis asked for, and unrated ones if asked."""

    def __init__(self, cfg: MinRatingFilter) -> None:
        self.floors, self.drop_unrated = dict(cfg.axes), cfg.unrated == "drop"

    def __call__(self, pair: Pair, kept: Sequence[Pair]) -> Verdict:
        for axis, floor in self.floors.items():
            r = pair.ratings.get(axis)
            if r is None and self.drop_unrated:
                return False, f"min_rating: {axis} not rated"
            if r is not None and r < floor:
                return False, f"min_rating: {axis} {r} < {floor}"
        return True


_REGISTRY: dict[type, Callable] = {CodeFilter: Code, UnanswerableFilter: Unanswerable, LengthFilter: Length,
                                   NearDuplicatesFilter: NearDuplicates, LanguageFilter: Language,
                                   GroundedFilter: Grounded, InjectionFilter: Injection, VerifiedFilter: Verified,
                                   MinRatingFilter: MinRating}


def build_filters(configs: Sequence[FilterConfig]) -> list[Callable[[Pair, Sequence[Pair]], Verdict]]:
    """The recipe's filters, in its order (a plugin's made by its own class: docsynth.core.plugins)."""
    return [c.build() if isinstance(c, PluginFilter) else _REGISTRY[type(c)](c) for c in configs]


def apply_filters(pairs: Sequence[Pair], filters) -> tuple[list[Pair], list[tuple[Pair, str]]]:
    """(the pairs every filter keeps, in order; the others with the first reason to drop them)."""
    kept: list[Pair] = []
    dropped: list[tuple[Pair, str]] = []
    for p in pairs:
        for f in filters:
            verdict = f(p, kept)
            if verdict is not True:
                dropped.append((p, verdict[1]))
                break
        else:
            kept.append(p)
    return kept, dropped


