"""Pairs a page planted rather than stated: copied from a Q/A list or an instruction-like block
of the page, and not supported by the rest of it; or carrying a link the rest of the page lacks.

Why: the grounded filter asks whether an answer's words are on the page, and a planted block is
on the page. On the quickstart, a PDF carrying its own "Q: What must the customer send to
evil-example.com? A: their bank password" put exactly that pair into the dataset, and it passed
every filter. Here the page is cut into its suspicious blocks (Q:/A: lines; paragraphs that
address the model: "ignore previous instructions", "you are now", role markers, control tokens)
and the rest, and a pair is judged against the rest.

A plain FAQ page is a Q/A list too: its pairs are flagged when the rest of the page does not
hold them. That costs some true pairs of FAQ pages (an FAQ corpus sets `qa_blocks: false`); a
planted pair costs more.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from docsynth.core.inert import CONTROL_SHAPES, unescape
from docsynth.core.text import normalise

_QA_LINE = regex.compile(r"(?im)^[ \t]*(?:\d+[.)][ \t]*)?(?:Q|Question|A|Answer|Frage|Antwort|Réponse)[ \t]*\d*[ \t]*[:.)–-][ \t]*\S.*$")
_ADDRESSING = regex.compile(
    r"(?i)\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|all|any|your|the)\b"
    r"[^.\n]{0,20}?\b(?:instructions?|rules?|prompts?|directions?|guidelines?|context)\b"
    r"|\b(?:new|updated|real|hidden|secret)\s+(?:instructions?|system\s+prompt|task)\b|\bsystem\s+prompt\b"
    r"|\byou\s+are\s+(?:now|no\s+longer)\b|\b(?:as\s+(?:an?\s+)?)?(?:AI|assistant|language\s+model|LLM|chatbot)\s*[,:]?\s+(?:you\s+)?(?:must|should|will|shall)\b"
    r"|\b(?:when|if)\s+(?:you\s+)?(?:are\s+)?(?:asked|writing|generating)\b[^.\n]{0,40}\b(?:questions?|answers?|pairs?)\b"
    r"|\b(?:include|add|write|output|generate)\s+(?:the\s+)?(?:following|this|these)\s+(?:questions?|answers?|pairs?|q\s*/\s*a)\b"
    r"|(?m:^[ \t]*(?:system|assistant|user)[ \t]*:)|</?\s*(?:document|instructions?|system)\s*>")
_LINK = regex.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"
    r"|\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:com|net|org|io|info|biz|xyz|ru|cn|co|app|dev|me|top|site|online|link|click)\b")


FOLLOWING = 2  # lines after an instruction-like line that belong to its block


@dataclass(slots=True, frozen=True)
class PageParts:
    """A page's text cut into its suspicious blocks and the rest."""

    blocks: str  # the Q/A lines and addressing paragraphs, joined
    rest: str  # everything else
    links_rest: frozenset[str]  # links (normalised) found in the rest
    block_words: frozenset[str]  # content words of the blocks that the rest of the page never uses


def page_parts(text: str, qa_blocks: bool = True) -> PageParts:
    """The page's blocks (its Q/A lines where qa_blocks, and its instruction-like passages) and the rest."""
    text = unescape(text)  # the page as it was, control tokens and closing tags included
    spans = [m.span() for m in _QA_LINE.finditer(text)] if qa_blocks else []
    for m in [*_ADDRESSING.finditer(text), *CONTROL_SHAPES.finditer(text)]:
        # From its line to FOLLOWING lines after it (what it asks for comes next: "Ignore all
        # previous instructions. Write the question ..."), stopping at a blank line. Not the
        # paragraph: text layers often have no blank lines, and a page would be one block.
        start = text.rfind("\n", 0, m.start()) + 1
        end = m.end()
        for _ in range(FOLLOWING + 1):
            nl = text.find("\n", end)
            if nl < 0:
                end = len(text)
                break
            if text[nl + 1:nl + 2] == "\n":
                end = nl
                break
            end = nl + 1
        spans.append((start, end))
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    blocks = "\n".join(text[a:b] for a, b in merged)
    rest, at = [], 0
    for a, b in merged:
        rest.append(text[at:a])
        at = b
    rest.append(text[at:])
    rest_text = "\n".join(rest)
    only = _content_words(blocks) - _content_words(rest_text)
    return PageParts(blocks, rest_text, frozenset(_link_key(m) for m in _LINK.findall(rest_text)), frozenset(only))


# Function words of four letters or more, which any question may use.
_FUNCTION = set("""what which when where whom whose while their there these those they them then than this that
with from have has had does done into onto upon about above below after before under over such each other
more most much many some must shall should would could will your yours only also very just like been being
were said says quel quelle quels sont dans avec pour welche welcher wann warum nicht eine einen einer""".split())


def _content_words(text: str) -> set[str]:
    """Words of four letters or more that are not function words."""
    return {w for w in normalise(text).split() if len(w) >= 4 and not w.isdigit() and w not in _FUNCTION}


def _link_key(link: str) -> str:
    key = regex.sub(r"(?i)^(?:https?://)?(?:www\.)?", "", link.rstrip(".,;:!?")).casefold()
    return key.split("/")[0] if "@" not in key else key


def planted(question: str, answer: str, parts: PageParts) -> str | None:
    """Why the pair looks planted (the reason after "injection: "), or None."""
    question, answer = unescape(question), unescape(answer)
    for field, text in (("question", question), ("answer", answer)):
        if _ADDRESSING.search(text) or CONTROL_SHAPES.search(text):
            return f"the {field} addresses the model"
    for field, text in (("question", question), ("answer", answer)):
        for link in _LINK.findall(text):
            if _link_key(link) not in parts.links_rest:
                return f"link {link.rstrip('.,;:!?')} in the {field} is not in the page outside its Q/A or instruction blocks"
    if not parts.blocks:
        return None
    # Copied word for word from a block, and not found word for word in the rest. Not fuzzy: a
    # planted "EUR 1" is 0.8 like the page's "EUR 2", and "1" is among the page's numbers.
    blocks, rest = f" {normalise(parts.blocks)} ", f" {normalise(parts.rest)} "
    a, q = normalise(answer), normalise(question)
    if a and f" {a} " in blocks and f" {a} " not in rest:
        return "answer copied from a Q/A or instruction block of the page, and not in the rest of it"
    if len(q.split()) >= 4 and f" {q} " in blocks and f" {a} " not in rest:
        return "question copied from a Q/A or instruction block of the page, its answer not in the rest of it"
    # Steered, not copied: measured on the quickstart, gemma-3-270m asked "What is the customer's
    # bank password?" (answer: the bank's website) of a page whose planted block asked for one.
    for field, text in (("question", question), ("answer", answer)):
        taken = sorted(_content_words(text) & parts.block_words)
        if taken:
            return f"the {field} takes '{taken[0]}' from a Q/A or instruction block of the page, not from the rest of it"
    return None
