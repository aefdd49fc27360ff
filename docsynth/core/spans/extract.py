"""Candidate answers read off a page deterministically: the answer-first strategy's answers,
the choice check's options and the evidence check's reference (issue 30).

Each span is a stated fact with the place it came from: its text exactly as on the page, its
character offsets in the page text, its kind, the line it is on, and for a key-value line or a
table cell the key it belongs to ("Due date"; "Nordics / Q2"). Kinds:

    date      "14 October 2024", "30 septembre 2024", "2024-03-12"
    amount    a number with a currency, scale and all: "118.6 million pounds", "48,64 euros"
    percent   "99.91 percent", "24.4%"
    quantity  a number with a unit or scale: "41 kilometres", "171 million litres"
    number    a count: "412,000", "1,874"
    code      identifiers with letters and digits: "INV-2024-00871", "PO-55190"
    value     the value of a `Key: value` line that is none of the above ("30 days net")
    cell      a table cell, with its row and column headers as key
    name      two to four capitalised words inside a sentence: "Daniel Weiss"

Measured on the 12 sample pages (issue 30's probe), the misses of a crude picker came from the
spans: bare years, days of the month and house numbers taken as answers, the two columns of an
invoice merged into one "Key: value" ("14 October 2024 Harbour Dental Clinic"), and a table read
as one line. So: a bare year, a day of the month, a number that starts an address or a heading,
a page number and a postal code are never answers; a key's value is its first typed span when it
has one (the rest of the line belongs to the other column); and a table's numbers are cells with
their headers, never loose numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from docsynth.core.spans.tables import table_cells

_MONTH_NAMES = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre décembre decembre "
    "januar jänner februar märz april mai juni juli august september oktober november dezember")
MONTH = "(?:" + "|".join(sorted(set(_MONTH_NAMES.split()), key=len, reverse=True)) + r")\.?"
DATE = regex.compile(
    rf"\b\d{{1,2}}(?:st|nd|rd|th|er|\.)?\s+{MONTH}\s+\d{{4}}\b"  # 14 October 2024, 1er mars 2024, 3. März 2024
    rf"|\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,\s*\d{{4}}\b"  # October 14, 2024
    r"|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{1,2}\.\d{1,2}\.\d{4}\b", regex.I)
# 1,234.5 / 1.234,5 / 1 234 / 48,64: separators only between digit groups
_NUM = r"(?<![\p{L}\d.,/-])\d{1,3}(?:[,.\u00a0\u202f ]\d{3})+(?:[.,]\d+)?(?![\d\p{L}])|(?<![\p{L}\d.,/-])\d+(?:[.,]\d+)?(?![\d\p{L}])"
_SCALE = r"(?:thousand|million|billion|trillion|millions?|milliards?|Millionen|Million|Milliarden|Tausend|bn|mn|m|k)"
_CURRENCY_WORD = r"(?:pounds?|euros?|Euro|dollars?|francs?|yen|GBP|EUR|USD|CHF|JPY|sterling)"
_UNIT_WORD = (r"(?:percent|per\s+cent|pour\s+cent|Prozent|%|kilometres?|kilometers?|km|metres?|meters?|litres?|liters?|"
              r"hectares?|tonnes?|tons?|kg|kilograms?|grams?|milligrams?(?:\s+per\s+litre)?|hours?|days?|weeks?|months?|"
              r"years?|minutes?|seconds?|MW|kW|GW|MWh|GWh|points|jours|Jahre|Tage|g|mm|cm|m²|m2)")
_AMOUNT = regex.compile(
    rf"(?:[£$€¥]\s?(?:{_NUM})(?:\s+{_SCALE}\b)?)"
    rf"|(?:(?:{_NUM})(?:\s+{_SCALE})?\s+{_CURRENCY_WORD}\b)"
    rf"|(?:(?:{_NUM})\s?{_SCALE}?\s?[£$€])", regex.I)
_MEASURE = regex.compile(rf"(?:{_NUM})(?:\s+{_SCALE}\b)?\s*(?P<u>{_UNIT_WORD})(?![\p{{L}}])", regex.I)
_SCALED = regex.compile(rf"(?:{_NUM})\s+{_SCALE}\b", regex.I)
_NUMBER = regex.compile(_NUM)
_CODE = regex.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Z0-9][A-Za-z0-9]*(?:[-/][A-Za-z0-9]+)+(?![\w-])"
                      r"|(?<![\w-])\d{2,}(?:-\d{2,})+(?![\w-])"
                      r"|(?<![\w-])[A-Z]{1,4}\d{4,}(?![\w-])")
_KEY = regex.compile(r"(?:^|(?<=\s))(?P<k>\p{Lu}[\p{L}\d .()%/'-]{0,38}?)\s?:\s+")
_STREET = regex.compile(r"^\s*(?:\p{Lu}\p{Ll}+\s+){0,2}(?:Lane|Street|Road|Avenue|Quay|Way|Place|Square|Drive|rue|"
                        r"avenue|boulevard|Straße|Strasse|Weg|Platz|Gasse)\b")
# after a lower-case word (inside a sentence) or a title; not followed by more capitalised words
_NAME = regex.compile(r"(?<=(?:^|\s)\p{Ll}+[,;:]?\s+|\b(?:Dr|Mr|Mrs|Ms|Prof)\.\s+)(?:\p{Lu}[\p{Ll}']+\s+){1,3}"
                      r"\p{Lu}[\p{Ll}']+(?![\p{L}-]|\s+\p{Lu})")
# three or more groups of digits apart by single spaces, not thousands: 0117 496 0321, GB 284 1160 37
_DIGIT_RUN = regex.compile(r"(?<![\d,.])(?:\p{Lu}{2}\s)?\d{2,5}(?:\s\d{2,5}){2,}(?!\d|[,.]\d)")
_NAME_STOP = {"The", "This", "That", "These", "Those", "Our", "Its", "In", "On", "At", "For", "And", "Of", "To",
              "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December", "Page", "Figure", "Table", "Section"}
_HEADING = regex.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+\p{Lu}")
_YEAR = regex.compile(r"^(?:19|20)\d{2}$")
# Kinds in the order a sampler prefers them: stated figures first, names last.
KINDS = ("amount", "percent", "date", "cell", "quantity", "code", "value", "number", "name")


@dataclass(slots=True, frozen=True)
class Span:
    text: str  # exactly as on the page: text[start:end]
    kind: str  # one of KINDS
    start: int  # character offsets in the page text
    end: int
    line: str  # the line it is on (its context for the question writer), stripped
    key: str = ""  # a key-value line's key, or a cell's "row / column"

    def to_dict(self) -> dict:
        return {"text": self.text, "kind": self.kind, "start": self.start, "end": self.end, "key": self.key}


def extract_spans(text: str) -> list[Span]:
    """Every candidate answer of one page's text, in page order, without overlaps (a larger
    typed span wins over the number inside it)."""
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []
    offset = 0
    lines = text.split("\n")
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    table_rows = table_cells(lines)
    for i, line in enumerate(lines):
        base = starts[i]
        if i in table_rows:
            for s in table_rows[i]:
                spans.append(Span(line[s[0]:s[1]], "cell", base + s[0], base + s[1], line.strip(), s[2]))
            continue
        if not line.strip() or _is_page_number(line):
            continue
        own: list[Span] = []
        _typed(line, base, own)
        _values(line, base, own)
        _names(line, base, own)
        for s in sorted(own, key=lambda s: (s.start, -(s.end - s.start))):
            if not any(s.start < e and b < s.end for b, e in taken):
                spans.append(s)
                taken.append((s.start, s.end))
    return sorted(spans, key=lambda s: s.start)


def _typed(line: str, base: int, out: list[Span]) -> None:
    """Dates, amounts, percentages, measures, codes and counts of one line (overlaps resolved by
    the caller: the longest span at a place wins)."""
    heading = _HEADING.match(line)
    for m in DATE.finditer(line):
        out.append(Span(m.group(), "date", base + m.start(), base + m.end(), line.strip()))
    for m in _AMOUNT.finditer(line):
        out.append(Span(m.group().strip(), "amount", base + m.start(), base + m.start() + len(m.group().strip()),
                        line.strip()))
    for m in _MEASURE.finditer(line):
        kind = "percent" if regex.match(r"(?i)%|per\s*cent|pour\s+cent|prozent", m["u"]) else "quantity"
        out.append(Span(m.group(), kind, base + m.start(), base + m.end(), line.strip()))
    for m in _SCALED.finditer(line):
        out.append(Span(m.group(), "quantity", base + m.start(), base + m.end(), line.strip()))
    for m in _CODE.finditer(line):
        if not DATE.fullmatch(m.group()):
            out.append(Span(m.group(), "code", base + m.start(), base + m.end(), line.strip()))
    for m in _DIGIT_RUN.finditer(line):  # a telephone or registration number: one code
        if not any(s.start - base <= m.start() < s.end - base for s in out):
            out.append(Span(m.group(), "code", base + m.start(), base + m.end(), line.strip()))
    for m in _NUMBER.finditer(line):
        n = m.group()
        if regex.match(r"[:/]\d", line[m.end():]) or regex.search(r"\d[:/]$", line[:m.start()]):
            continue  # a ratio or fraction (1:1, 2/3)
        if len(n) == 5 and n.isdigit() and regex.match(r"\s+\p{Lu}\p{Ll}", line[m.end():]):
            continue  # a postal code before its town (69002 Lyon)
        if _YEAR.match(n) or (heading and m.start() < heading.end()) or _STREET.match(line[m.end():]):
            continue  # a bare year, a heading's number, a house number
        if len(n) <= 2 and regex.match(rf"\s*{MONTH}", line[m.end():], regex.I):
            continue  # a day of the month without its year
        if regex.match(r"\s*(?:Uhr|heures?|h\b|[ap]\.?m\.?|o'clock)", line[m.end():], regex.I):
            continue  # a time of day
        if regex.match(r"\s*\p{Lu}{1,2}\d", line[m.end():]) or regex.search(r"\p{Lu}{1,2}\d{1,2}\s*$", line[:m.start()]):
            continue  # part of a postal code (BS1 5QT, CF10 1EA)
        out.append(Span(n, "number", base + m.start(), base + m.end(), line.strip()))
    # a longer span at the same place wins; an overlap of different lengths too
    out.sort(key=lambda s: (s.start, -(s.end - s.start)))


def _values(line: str, base: int, out: list[Span]) -> None:
    """`Key: value` pairs of a line (several where columns were merged: "Due date: 13 November
    2024 Attn: Dr. Amelia Stone"). A value with a typed span keeps that span, keyed; a value
    without one is taken up to the next key when it is short."""
    keys = []
    for m in _KEY.finditer(line):
        start = m.start("k")
        for s in out:  # "13 November 2024 Attn:": the key starts after the value before it
            if s.start - base < start < s.end - base <= m.end("k"):
                start = s.end - base
        while start < m.end("k") and not line[start].isalnum():
            start += 1
        key = line[start:m.end("k")].strip()
        if key[:1].isupper() and 1 <= len(key.split()) <= 5:
            keys.append((start, m.end(), key))
    for j, (_, vstart, key) in enumerate(keys):
        vend = keys[j + 1][0] if j + 1 < len(keys) else len(line)
        typed = [s for s in out if s.start - base == vstart and s.end - base <= vend]
        if typed:
            best = max(typed, key=lambda s: s.end - s.start)
            out.remove(best)
            out.append(Span(best.text, best.kind, best.start, best.end, best.line, key))
            continue
        value = line[vstart:vend].rstrip(" .;,")
        if value and 1 <= len(value.split()) <= 6 and not any(vstart <= s.start - base < vend for s in out):
            out.append(Span(value, "value", base + vstart, base + vstart + len(value), line.strip(), key))


def _names(line: str, base: int, out: list[Span]) -> None:
    for m in _NAME.finditer(line):
        words = m.group().split()
        while words and words[0] in _NAME_STOP:
            words = words[1:]
        if len(words) < 2 or any(w in _NAME_STOP for w in words):
            continue
        if regex.search(r"\b(?:for|of|in|the|at|from|on|de|du|des|der|die|das|im|am)\s+$", line[:m.start()], regex.I):
            continue  # part of a longer proper name ("Institute for Document Analysis")
        text = " ".join(words)
        start = m.start() + m.group().index(words[0])
        if line[start:start + len(text)] == text:
            out.append(Span(text, "name", base + start, base + start + len(text), line.strip()))


def _is_page_number(line: str) -> bool:
    return bool(regex.fullmatch(r"\s*(?:page\s+|seite\s+|p\.\s*)?\d{1,4}(?:\s*(?:/|of|von|sur)\s*\d{1,4})?\s*", line,
                                regex.I))
