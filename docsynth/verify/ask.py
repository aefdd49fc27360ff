"""The verifier's request for one sample, and its reply read back: the sample's questions,
answered from the sample's text alone (prompts/verify/answer.md), as a JSON list of answers."""

from __future__ import annotations

import json
import re

from docsynth.core.inert import Inert
from docsynth.core.resources import shipped
from docsynth.llm.backends import ChatRequest
from docsynth.llm.parse import ParseError, json_candidates
from docsynth.llm.prompts import Template, load_template

NOT_STATED = "not stated"
NUMBERED = re.compile(r"^\s*\d{1,3}\s*[.:)]\s+")  # "2. " before an answer: the question's number
# One character of a guided JSON string: no escapes, as in xgrammar's own JSON-schema strings.
# With the escape alternative, (?:[^"\\\x00-\x1f]|\\["\\/bfnrt]), xgrammar filled the token bitmask
# of a {1,300} string in 900 ms a token on the instruct model's vocabulary (the engine core, not
# the model, then set the verify stage's pace); with the class alone, in 0.5 ms. An answer that
# would quote something closes its string at the quote: what came before is still read.
STRING_CHAR = r'[^"\\\x00-\x1f]'


def answer_template() -> Template:
    return load_template(shipped("prompts") / "verify" / "answer.md")


def answers_schema(n: int, max_chars: int) -> dict:
    """Exactly n answers, each bounded: a weak model cannot run to the token limit."""
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    return {"type": "object", "properties": {"answers": {"type": "array", "items": text, "minItems": n, "maxItems": n}},
            "required": ["answers"], "additionalProperties": False}


def answers_regex(n: int, schema: dict) -> str:
    """The schema's JSON written compactly, as a regex (see ChatRequest.regex), each answer led
    by its question's number: measured on the instruct model, unnumbered answers slipped by
    one (the compliance rate given for the question before it), and a slip is a false "wrong"."""
    item = schema["properties"]["answers"]["items"]
    char = STRING_CHAR
    strings = [rf'"{i}\. {char}{{{item["minLength"]},{item["maxLength"]}}}"' for i in range(1, n + 1)]
    return r'\{"answers": ?\[' + ", ?".join(strings) + r"\]\}"


def verify_request(template: Template, inert: Inert, text: str, questions: list[str], seed: int,
                   schema: dict | None, images: list[dict] | None = None) -> ChatRequest:
    """The text is the candidate's own, already made inert and quoted for generation; the
    questions are model output, made inert here too (docsynth.core.inert). With images (chat
    image parts), the questions are answered from the pages as seen."""
    numbered = "\n".join(f"{i}. {' '.join(inert(q).split())}" for i, q in enumerate(questions, 1))
    msgs = template.render_parts(images, document=text, questions=numbered) if images is not None else \
        template.render(document=text, questions=numbered)
    return ChatRequest(msgs, seed, schema, regex=answers_regex(len(questions), schema) if schema else None)


def reply_list(text: str, key: str, n: int, what: str, per: str) -> list:
    """The first JSON list in a reply, as {key: [...]} or bare, of exactly n items; ParseError
    with the reason otherwise (the verifier's answers, the judge's ratings)."""
    for candidate in json_candidates(text or ""):
        try:
            data = json.loads(candidate, strict=False)
        except ValueError:
            continue
        if isinstance(data, dict):
            data = data.get(key)
        if isinstance(data, list):
            if len(data) != n:
                raise ParseError(f"{len(data)} {what} for {n} {per}")
            return data
    raise ParseError(f"no JSON list of {what} in the reply")


def parse_answers(text: str, n: int) -> list[str]:
    """n answers from the verifier's reply ({"answers": [...]}, or a bare list), in order;
    ParseError with the reason otherwise."""
    return [NUMBERED.sub("", _text(a), count=1) for a in reply_list(text, "answers", n, "answers", "questions")]


def _text(a) -> str:
    if isinstance(a, dict):  # {"question": ..., "answer": ...} items, as some models write
        a = a.get("answer", "")
    return "" if a is None or isinstance(a, bool) else " ".join(str(a).split())
