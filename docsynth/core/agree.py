"""Do two answers to one question agree? The round-trip check of verification: the generator's
answer against the verifier's, written from the page alone.

Plain token F1 is not enough: at F1 >= 0.5 "17.1 million pounds" agrees with "81.2 million
pounds" (issue 18, measured on the gemma quickstart). So quantities are strict:

- numbers are read as values ("4.2 million" = "4,200,000" = "4.2m"), dates as days ("12 March
  2024" = "March 12, 2024" = "2024-03-12"); every number and date of the shorter answer must be
  in the longer one, and an answer with a number needs one in the other;
- a scale word named by one answer only is no conflict either: "1,101" agrees with "1,101
  thousand euros" (a table headed "in thousand euros", measured on the instruct model's
  re-answers), but "17.1 million" never agrees with "81.2 million";
- two answers naming different currencies or units disagree: "$118.6 million" and "118.6
  million pounds" are not the same amount, whatever the digits (a currency or unit named by
  one answer only is no conflict: "118.6 million" agrees with "$118.6 million").

Then the words: normalised exact, one answer contained in the other, or token F1 >= min_f1.
A re-answer that says the page does not answer the question disagrees, with that reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date

import regex

from docsynth.core.text import normalise

_MONTHS = {m: i + 1 for i, ms in enumerate(
    ["jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"]) for m in ms.split()}
_MONTH = r"(?P<m>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATES = [
    regex.compile(rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH},?\s+(?P<y>\d{{4}})\b", regex.I),
    regex.compile(rf"\b{_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b", regex.I),
    regex.compile(r"\b(?P<y>\d{4})-(?P<mn>\d{1,2})-(?P<d>\d{1,2})\b"),
]
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "mio": 1e6, "billion": 1e9, "bn": 1e9,
          "trillion": 1e12, "tn": 1e12}
# A comma before 1 or 2 digits is a decimal comma ("48,64 euros"); before 3, a thousands separator.
_NUMBER = regex.compile(r"(?<![\p{L}\d.,])(?P<n>\d+(?:[,\u00a0\u202f ]\d{3}(?!\d))*(?:\.\d+|,\d{1,2}(?!\d))?)"
                        r"(?:\s*(?P<s>thousand|million|billion|trillion|mio|mn|bn|tn|k|m)\b)?", regex.I)
# What an amount is counted in. Symbols and words name the same unit.
_UNITS = {"$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "us$": "USD",
          "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
          "£": "GBP", "gbp": "GBP", "pound": "GBP", "pounds": "GBP", "sterling": "GBP",
          "¥": "JPY", "jpy": "JPY", "yen": "JPY", "chf": "CHF", "francs": "CHF",
          "%": "%", "percent": "%", "per cent": "%", "percentage points": "pp",
          "km": "km", "kilometres": "km", "kilometers": "km", "kg": "kg", "kilograms": "kg",
          "tonnes": "t", "tons": "t", "hours": "h", "days": "day", "years": "year", "months": "month",
          "metres": "m-len", "meters": "m-len", "mw": "MW", "kw": "kW", "gw": "GW", "mwh": "MWh", "gwh": "GWh"}
_WORD_UNITS = [u for u in _UNITS if u[0].isalpha()]
_UNIT = regex.compile(r"(?:\b(?:" + "|".join(regex.escape(u) for u in sorted(_WORD_UNITS, key=len, reverse=True))
                      + r")\b)|us\$|[$€£¥%]", regex.I)
_NONE = regex.compile(r"\b(?:not (?:stated|mentioned|given|specified|provided|found|available|answerable|in the "
                      r"(?:document|text|page))|unanswerable|cannot be (?:determined|answered|found)|no information|"
                      r"does not (?:say|state|mention|specify|provide)|unknown|n/?a)\b", regex.I)


@dataclass(slots=True, frozen=True)
class Agreement:
    agree: bool
    how: str  # exact, containment, f1, or why not: numbers, currency or unit, no answer, differ
    reason: str  # one sentence for people and the rejects file


def agreement(answer: str, reanswer: str, min_f1: float = 0.5) -> Agreement:
    """Whether the verifier's re-answer agrees with the answer (see the module's rules)."""
    a, r = normalise(answer), normalise(reanswer)
    if not r or (_NONE.search(reanswer) and not _NONE.search(answer)):
        return Agreement(False, "no answer", "the verifier found no answer to the question in the text")
    fa, fr = _forms(answer), _forms(reanswer)
    qa, qr = set(fa), set(fr)
    if qa:  # the answer's numbers and dates must come back: a re-answer may add context, not change them
        short, long_ = (fa, fr) if len(qa) <= len(qr) else (fr, fa)
        if not qr or any(not _found(v, bare, long_) for v, bare in short.items()):
            return Agreement(False, "numbers", f"the numbers disagree: {_show(qa)} vs {_show(qr)}")
    ua, ur = units(answer), units(reanswer)
    if ua and ur and not ua & ur:
        return Agreement(False, "currency or unit", f"different currency or unit: {', '.join(sorted(ua))} vs "
                                                    f"{', '.join(sorted(ur))}")
    if a == r:
        return Agreement(True, "exact", "the same answer")
    if f" {a} " in f" {r} " or f" {r} " in f" {a} ":
        return Agreement(True, "containment", "one answer contains the other")
    f1 = token_f1(a, r)
    if qa and qa == qr:
        return Agreement(True, "numbers", f"the same numbers and dates ({_show(qa)}); words F1 {f1:.2f}")
    if f1 >= min_f1:
        return Agreement(True, "f1", f"words agree (F1 {f1:.2f})")
    return Agreement(False, "differ", f"the answers differ (F1 {f1:.2f})")


def quantities(text: str) -> set[str]:
    """Dates (as `2024-03-12`) and numbers (as values, scaled: "4.2 million" -> 4200000) in a text."""
    return set(_forms(text))


def _found(value: str, bare: str | None, other: dict[str, str | None]) -> bool:
    """Whether a quantity is among another answer's: the same value, or the same digits where
    only one of the two names a scale ("1,101" and "1,101 thousand")."""
    if value in other:
        return True
    if bare is not None:  # scaled here: the other's unscaled number with these digits
        return other.get(bare, "") is None
    return any(b == value for b in other.values())


def _forms(text: str) -> dict[str, str | None]:
    """quantities(text), each with its digits' value where a scale word multiplied it (else None)."""
    found: dict[str, str | None] = {}
    spans = []
    for pattern in _DATES:
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e in spans):
                continue
            g = m.groupdict()
            month = int(g["mn"]) if g.get("mn") else _MONTHS[g["m"].casefold()]
            try:
                found[date(int(g["y"]), month, int(g["d"])).isoformat()] = None
                spans.append(m.span())
            except ValueError:
                pass
    for m in _NUMBER.finditer(text):
        if any(s <= m.start() < e for s, e in spans):
            continue
        n = m["n"]
        if regex.search(r",\d{1,2}$", n):
            n = n[:n.rindex(",")].replace(",", "") + "." + n[n.rindex(",") + 1:]
        digits = float(regex.sub(r"[,\u00a0\u202f ]", "", n))
        value = digits * _SCALE[m["s"].casefold()] if m["s"] else digits
        found.setdefault(f"{value:.12g}", f"{digits:.12g}" if m["s"] else None)
    return found


def units(text: str) -> set[str]:
    """The currencies and units an answer names."""
    return {_UNITS[u.casefold()] for u in _UNIT.findall(text)}


def token_f1(a: str, b: str) -> float:
    """SQuAD's token F1 of two normalised strings."""
    ta, tb = a.split(), b.split()
    common = sum((Counter(ta) & Counter(tb)).values())
    if not common:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def _show(q: set[str]) -> str:
    return ", ".join(sorted(q)) or "none"
