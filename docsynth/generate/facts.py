"""Key facts of a text: short spans a question can be answered with (dates, amounts,
percentages, quantities, codes, names), picked by pattern. Templates can show them to the
model as candidate answers ({{ facts }}), which keeps a small model's answers in the text."""

from __future__ import annotations

import regex

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
           r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|janvier|février|mars|avril|mai|juin|juillet|août|septembre"
           r"|octobre|novembre|décembre|Januar|Februar|März|Juni|Juli|Oktober|Dezember)")
_NUM = r"\d{1,3}(?:[,.\s]\d{3})*(?:[.,]\d+)?|\d+(?:[.,]\d+)?"
_UNIT = (r"(?:%|percent|per cent|Prozent|pour cent|million|billion|thousand|Millionen(?:\s?Euro)?|millions d'euros|km|kilometres|kilometers|m|kg|tonnes|litres|liters"
         r"|hours|days|weeks|months|years|employees|staff|residents|members|units|pages|customers|people)")
_PATTERNS = [
    ("date", rf"\b\d{{1,2}}(?:st|nd|rd|th|\.)?\s+{_MONTHS}\s+\d{{4}}\b|\b{_MONTHS}\s+\d{{1,2}},?\s+\d{{4}}\b"
             rf"|\b{_MONTHS}\s+\d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}\b"),
    ("money", rf"(?:[$€£¥]\s?(?:{_NUM})(?:\s?(?:million|billion|m|bn|k))?|\b(?:EUR|USD|GBP|CHF)\s?(?:{_NUM})"
              rf"|\b(?:{_NUM})\s?(?:EUR|USD|GBP|CHF|€|euros?|dollars|pounds)(?:\s?(?:million|billion))?)"),
    ("quantity", rf"\b(?:{_NUM})\s?{_UNIT}(?![\p{{L}}])(?:\s(?:pounds|euros|dollars))?"),
    ("code", r"\b(?=[A-Z0-9/-]*\d)(?=[A-Z0-9/-]*[A-Z])[A-Z0-9]+(?:[-/][A-Z0-9]+)+\b"),
    ("name", r"\b\p{Lu}[\p{Ll}&'’-]+(?:[ \t]+(?:(?:of|de|du|der|von|and|&)[ \t]+)?\p{Lu}[\p{L}&'’-]+){1,4}\b"),
]
_FACT = regex.compile("|".join(f"(?P<{kind}>{pat})" for kind, pat in _PATTERNS), regex.V1)
_STOP_STARTS = {"The", "This", "That", "These", "Those", "In", "On", "At", "For", "From", "To", "By", "With",
                "And", "But", "Our", "Its", "Page", "Le", "La", "Les", "Der", "Die", "Das", "Dear"}


def key_facts(text: str, limit: int) -> list[str]:
    """Up to limit distinct fact spans in order of appearance, alternating kinds so that a
    page full of numbers still yields names and dates."""
    by_kind: dict[str, list[str]] = {}
    seen: set[str] = set()
    for m in (m for line in text.splitlines() for m in _FACT.finditer(" ".join(line.split()))):
        span, kind = m.group().strip(" ,."), m.lastgroup
        if kind == "name":
            words = span.split()
            while words and words[0] in _STOP_STARTS:
                words = words[1:]
            while words and words[-1] in _STOP_STARTS:
                words = words[:-1]
            if len(words) < 2:
                continue
            span = " ".join(words)
        key = span.casefold()
        if len(span) < 2 or key in seen:
            continue
        seen.add(key)
        by_kind.setdefault(kind, []).append(span)
    out: list[str] = []
    queues = [list(v) for v in by_kind.values()]
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out
