"""From a sample's spans to what generation and verification use: the spans of a sample's text by
page, the ones answer-first asks about, the choice check's options, and the evidence check."""

from __future__ import annotations

from dataclasses import dataclass

import regex

from docsynth.core.spans.extract import KINDS, Span, extract_spans  # noqa: F401 (KINDS: the order pick_spans takes)

_PAGE_MARK = regex.compile(r"^\[Page (\d+)\]$")


@dataclass(slots=True, frozen=True)
class Evidence:
    """Where an answer-first pair's answer stands: page (the document's page number), the span's
    offsets in the sample's text (what the model was given: docsynth.llm.prompts.
    format_document of its pages), its kind and key, and its text."""

    page: int
    start: int
    end: int
    kind: str
    key: str
    text: str

    def to_dict(self) -> dict:
        return {"page": self.page, "start": self.start, "end": self.end, "kind": self.kind, "key": self.key,
                "text": self.text}


def document_spans(text: str, pages: list[int]) -> list[tuple[int, Span]]:
    """The spans of a sample's text ([Page N] marks where it has several pages), each with its
    page number."""
    out: list[tuple[int, Span]] = []
    if len(pages) == 1:
        return [(pages[0], s) for s in extract_spans(text)]
    offset, page, chunk_start, chunk = 0, None, 0, []
    blocks: list[tuple[int, int, str]] = []  # (page, offset, text)
    for line in text.split("\n"):
        m = _PAGE_MARK.match(line.strip())
        if m:
            if page is not None:
                blocks.append((page, chunk_start, "\n".join(chunk)))
            page, chunk_start, chunk = int(m.group(1)) - 1, offset + len(line) + 1, []
        elif page is not None:
            chunk.append(line)
        offset += len(line) + 1
    if page is not None:
        blocks.append((page, chunk_start, "\n".join(chunk)))
    for k, start, block in blocks:
        if 0 <= k < len(pages):
            for s in extract_spans(block):
                out.append((pages[k], Span(s.text, s.kind, s.start + start, s.end + start, s.line, s.key)))
    return out


def pick_spans(found: list[tuple[int, Span]], n: int, order: tuple[str, ...], rank) -> list[tuple[int, Span]]:
    """n spans to ask about, spread over kinds (in `order`, a template's preference) and lines: a
    round over the kinds, each giving its best-ranked span (rank: a deterministic key, the run's
    seed in it) on a line not used yet; a span whose text is on the page twice is left out (its
    place would be ambiguous), and so are kinds not in `order`."""
    counts: dict[str, int] = {}
    for _, s in found:
        counts[s.text] = counts.get(s.text, 0) + 1
    by_kind: dict[str, list[tuple[int, Span]]] = {k: [] for k in order}
    for p, s in found:
        if s.kind in by_kind and counts[s.text] == 1:
            by_kind[s.kind].append((p, s))
    for k in by_kind:
        by_kind[k].sort(key=lambda ps: rank(ps[1]))
    chosen: list[tuple[int, Span]] = []
    lines: set[tuple[int, str]] = set()
    for fresh_lines in (True, False):
        progress = True
        while len(chosen) < n and progress:
            progress = False
            for k in order:
                if len(chosen) >= n:
                    break
                for ps in by_kind[k]:
                    if ps in chosen or (fresh_lines and (ps[0], ps[1].line) in lines):
                        continue
                    chosen.append(ps)
                    lines.add((ps[0], ps[1].line))
                    progress = True
                    break
    return sorted(chosen, key=lambda ps: ps[1].start)


def evidence_holds(text: str, evidence: dict | None, answer: str) -> tuple[bool | None, str]:
    """The evidence check: the recorded span is at its recorded place in the sample's text, and
    the answer is that span. None where the pair records no evidence (a model-first pair)."""
    if not evidence or evidence.get("text") is None or evidence.get("start") is None:
        return None, "no recorded evidence"
    start, end, span = evidence["start"], evidence["end"], evidence["text"]
    if not (0 <= start <= end <= len(text)) or text[start:end] != span:
        return False, f"the span {span!r} is not at {start}-{end} of the text"
    if " ".join(answer.split()) != " ".join(span.split()):
        return False, f"the answer {answer!r} is not the recorded span {span!r}"
    return True, "the answer is the span at its recorded place"


# What a choice's options are drawn from: spans that could answer the same kind of question.
FAMILY = {"amount": "figure", "percent": "figure", "quantity": "figure", "number": "figure", "cell": "figure",
          "date": "date", "code": "code", "value": "text", "name": "text"}


def options_for(found: list[tuple[int, Span]], reference: Span, k: int) -> list[str]:
    """The choice check's options for a reference span: it and up to k-1 other spans of its family,
    the nearest to it on the page first (the neighbouring figure is the slip a small model makes:
    "18,604" for the samples taken, "18,620"), each text once. [] when it has no rival."""
    seen = {" ".join(reference.text.split())}
    rivals = []
    for _, s in sorted(found, key=lambda ps: abs(ps[1].start - reference.start)):
        t = " ".join(s.text.split())
        if FAMILY.get(s.kind) == FAMILY.get(reference.kind) and t not in seen:
            seen.add(t)
            rivals.append(t)
        if len(rivals) >= k - 1:
            break
    return [" ".join(reference.text.split()), *rivals] if rivals else []
