"""The choice check (verify.checks: choice; issue 30): the verifier answers a pair's question by
picking a letter among candidate answers read off the same page (docsynth.core.spans.options_for):
the pair's answer and its nearest rivals of the same kind, in an order drawn from the seed, and
"none of these". The pair agrees when the pick is its answer.

The reference of an answer-first pair is its recorded span; of a model-first pair, the page's
span its answer agrees with exactly (an answer that is no span of the page is not checked here:
the round trip checks it).
"""

from __future__ import annotations

import functools
import hashlib
import string

from docsynth.core.agree import agreement
from docsynth.core.inert import Inert
from docsynth.core.resources import shipped
from docsynth.core.spans import Span, options_for
from docsynth.llm.backends import ChatRequest
from docsynth.llm.prompts import Template, load_template

NONE_OF_THESE = "none of these"


@functools.cache
def choice_template() -> Template:
    return load_template(shipped("prompts") / "verify" / "choice.md")


def reference(found: list[tuple[int, Span]], answer: str, evidence: dict | None) -> Span | None:
    """The span a pair's answer is: its recorded evidence, else the longest span of the page that
    agrees with the answer exactly, by containment or by its numbers."""
    if evidence and evidence.get("text") is not None:
        for _, s in found:
            if s.start == evidence["start"] and s.text == evidence["text"]:
                return s
    best = None
    for _, s in found:
        g = agreement(answer, s.text)
        if g.agree and g.how in ("exact", "containment", "numbers") and (best is None or len(s.text) > len(best.text)):
            best = s
    return best


def options(found: list[tuple[int, Span]], ref: Span, k: int, seed: int, key: str) -> list[str]:
    """The options in their asked order (shuffled by the seed: the answer is not always A), with
    "none of these" last; [] when the reference has no rival on the page."""
    opts = options_for(found, ref, k)
    if not opts:
        return []
    opts.sort(key=lambda t: hashlib.sha256(f"{seed}:{key}:{t}".encode()).digest())
    return [*opts, NONE_OF_THESE]


def choice_request(template: Template, inert: Inert, text: str, question: str, opts: list[str],
                   seed: int) -> ChatRequest:
    """The question is model output and the options page text: slot values, made inert."""
    letters = string.ascii_uppercase[:len(opts)]
    listed = "\n".join(f"{c}. {' '.join(inert(o).split())}" for c, o in zip(letters, opts))
    msgs = template.render(document=text, questions=" ".join(inert(question).split()), options=listed)
    return ChatRequest(msgs, seed, {"type": "string", "enum": list(letters)}, regex=f"[{letters[0]}-{letters[-1]}]")


def read_choice(text: str | None, opts: list[str]) -> str | None:
    """The option the reply picked (None: no letter of the options in it)."""
    for ch in (text or "").strip().strip('"').strip():
        if ch.isupper() and ch in string.ascii_uppercase[:len(opts)]:
            return opts[string.ascii_uppercase.index(ch)]
        if ch.isalpha():
            return None
    return None
