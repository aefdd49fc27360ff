"""Does the answer have the type the question asks for? A "when" question needs a date, a "how
many" question a number, a "who" question a name, "what is the order number?" digits that are not a date (issue 30's
type check). Deterministic and
free: a check a small model cannot fail, run on every pair. A question whose wording sets no
type ("what is the invoice number?") is not checked (None).
"""

from __future__ import annotations

import regex

from docsynth.core.agree import quantities
from docsynth.core.spans.extract import DATE, MONTH

_WH = [  # (question pattern, expected type), first match wins
    (regex.compile(r"^\s*(?:in\s+)?(?:what|which)\s+(?:year|month|day|date)\b|^\s*(?:when|by\s+when|until\s+when|since"
                   r"\s+when)\b|\bon\s+what\s+date\b|\bwhat\s+(?:is|was)\s+the\s+(?:\w+\s+){0,2}date\b", regex.I), "date"),
    (regex.compile(r"^\s*how\s+(?:many|much|long|far|large|big|high|old|often)\b|\bwhat\s+(?:percentage|percent|share|"
                   r"proportion|fraction|number\s+of|amount|total|sum|rate|price|cost|value)\b|\bby\s+how\s+much\b", regex.I),
     "number"),
    (regex.compile(r"^\s*(?:who|whom|whose)\b", regex.I), "name"),
    (regex.compile(r"\b(?:number|no\.|id|code|reference|identifier)\s*\??\s*$", regex.I), "identifier"),
]
_YEAR = regex.compile(r"\b(?:1[5-9]|20)\d{2}\b")
_WORD_NUMBERS = regex.compile(r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
                              r"forty|fifty|hundred|thousand|million|billion|half|dozen|once|twice)\b", regex.I)


def expected_type(question: str) -> str | None:
    for pattern, kind in _WH:
        if pattern.search(question):
            return kind
    return None


def answer_has(answer: str, kind: str) -> bool:
    if kind == "date":
        return bool(DATE.search(answer) or _YEAR.search(answer) or regex.search(rf"\b{MONTH}\b", answer, regex.I)
                    or regex.search(r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|quarter|q[1-4])\b",
                                    answer, regex.I))
    if kind == "number":
        return bool(quantities(answer) or _WORD_NUMBERS.search(answer))
    if kind == "identifier":  # digits that are not a date alone ("12 February 2023" is no order number)
        return bool(regex.search(r"\d", answer)) and not (DATE.fullmatch(answer.strip(" .")) or
                                                          _YEAR.fullmatch(answer.strip(" .")))
    if kind == "name":  # a name has a capitalised word and is not a bare figure
        return bool(regex.search(r"\p{Lu}", answer)) and not regex.fullmatch(r"[\d\s.,%$€£-]*", answer)
    return True


def type_check(question: str, answer: str) -> tuple[bool | None, str]:
    """(agrees, reason): None where the question sets no type."""
    kind = expected_type(question)
    if kind is None:
        return None, "the question sets no answer type"
    if answer_has(answer, kind):
        return True, f"{_a(kind)} question with {_a(kind)} answer"
    return False, f"{_a(kind)} question, but the answer has no {kind}"


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
