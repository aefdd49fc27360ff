"""The page gate (generate.gate; issue 30): pages not worth asking about are left out before any
prompt is made, each with its reason, so no model token is spent on them. NeMo Data Designer's
long-document VQA pipeline skipped 72 % of its pages this way before generation.

    near-empty          fewer than gate.min_words words (a cover, a divider, a page number)
    boilerplate         near-empty once the lines it shares with most of its document's pages
                        (running heads, footers, disclaimers) are left out
    table of contents   most lines are an entry and a page number ("2. Methods ........ 14")
    index               most lines are a term and page numbers ("Revenue, 12, 45-47")
    references          a reference list: under its heading, or most lines cite a year or "et al."

A gated page is not a reject (nothing went wrong): the generate stage counts it by reason in its
summary and lists it in its marker.
"""

from __future__ import annotations

from collections import Counter

import regex

from docsynth.config.gate import PageGateConfig

_WORD = regex.compile(r"\p{L}[\p{L}'-]*|\d+(?:[.,]\d+)*")
_TOC_LINE = regex.compile(r"^\s*(?:[\dIVXivx]+(?:\.\d+)*\.?\s+)?\p{L}[^\n]{1,150}?(?:\s*\.{2,}\s*|\s{2,}|\s)(?:\d{1,4}|[ivxlc]{1,6})\s*$")
_INDEX_LINE = regex.compile(r"^\s*\p{L}[^\d\n]{1,80}?[,:]?\s+\d{1,4}(?:\s*[-–]\s*\d{1,4})?(?:\s*,\s*\d{1,4}(?:\s*[-–]\s*\d{1,4})?)*\s*$")
_TOC_HEAD = regex.compile(r"^\s*(?:table\s+of\s+)?contents|^\s*inhalt(?:sverzeichnis)?\b|^\s*sommaire\b|^\s*table\s+des\s+"
                          r"mati[eè]res", regex.I)
_INDEX_HEAD = regex.compile(r"^\s*(?:[\p{L}\d]+:?\s+){0,4}(?:index|register|stichwortverzeichnis)(?:\s+\d{1,4})?\s*$", regex.I)
_REF_HEAD = regex.compile(r"^\s*(?:appendix\s+\w+\s+|chapter\s+\d+\s+|\d+\.?\s+)?(?:references|bibliography|works\s+cited|literature\s+cited|literatur"
                          r"(?:verzeichnis)?|r[ée]f[ée]rences(?:\s+bibliographiques)?|bibliographie)\s*$", regex.I)
_CITATION = regex.compile(r"\((?:19|20)\d{2}[a-z]?\)|\bet\s+al\.|(?:^|\s)\[\d{1,3}\]\s|\b(?:19|20)\d{2}[a-z]?\.\s|doi:|"
                          r"\bpp?\.\s*\d|\bvol\.\s*\d|https?://doi", regex.I)


def repeated_lines(texts: list[str], cfg: PageGateConfig) -> set[str]:
    """Lines (normalised) on at least gate.repeated_share of a document's pages, for a document of
    at least 3 pages: its running heads, footers and disclaimers (none where no page has words
    enough of its own besides them)."""
    if len(texts) < 3:
        return set()
    counts = Counter(line for t in texts for line in {_key(x) for x in t.split("\n")} if line)
    need = max(2, cfg.repeated_share * len(texts))
    repeated = {line for line, n in counts.items() if n >= need}
    # Lines around real content: a document whose pages are all the same text has none of its own
    # to frame (its repeats are ingest.dedup's business, not boilerplate)
    framed = any(sum(len(_WORD.findall(x)) for x in t.split("\n") if _key(x) not in repeated) >= cfg.min_words
                 for t in texts)
    return repeated if framed else set()


def gate(text: str, cfg: PageGateConfig, repeated: set[str] = frozenset(), words: bool = True) -> str | None:
    """Why a page is not worth asking about, or None. words=False leaves out the rules that count
    words (near-empty, boilerplate): under generate.vision a chart with a caption is worth asking."""
    lines = [x for x in text.split("\n") if x.strip()]
    if words and len(_WORD.findall(text)) < cfg.min_words:
        return "near-empty"
    own = [x for x in lines if _key(x) not in repeated]
    if words and repeated and sum(len(_WORD.findall(x)) for x in own) < cfg.min_words:
        return "boilerplate"
    if len(own) < cfg.min_lines:
        return None
    if any(_INDEX_HEAD.match(x) for x in own[:3]):  # entries with dot leaders look like contents: the heading decides
        if max(_shape(own, _INDEX_LINE), _shape(own, _TOC_LINE)) >= 0.4:
            return "index"
    share = min(cfg.list_share, 0.4) if any(_TOC_HEAD.search(x) for x in own[:3]) else cfg.list_share
    if _shape(own, _TOC_LINE) >= share and not _INDEX_LINE_COMMAS(own):
        return "table of contents"
    if _shape(own, _INDEX_LINE) >= cfg.list_share:
        return "index"
    headed = any(_REF_HEAD.match(x) for x in own[:5])
    if _shape(own, _CITATION) >= (0.3 if headed else cfg.list_share):
        return "references"
    return None


def _INDEX_LINE_COMMAS(lines: list[str]) -> bool:
    """Most list lines carry several page numbers after commas: an index, not contents."""
    return sum(bool(regex.search(r",\s*\d{1,4}\s*(?:[-–]\s*\d{1,4})?\s*$", x)) for x in lines) > len(lines) / 3


def _shape(lines: list[str], pattern: regex.Pattern) -> float:
    return sum(bool(pattern.search(x)) for x in lines) / len(lines)


def _key(line: str) -> str:
    """A line as compared across pages: its words, page numbers taken out ("Page 3 of 12")."""
    return " ".join(regex.sub(r"\d+", "#", line.casefold()).split())
