"""The judge's request for one sample, and its reply read back: each question/answer pair
rated against the sample's text (prompts/verify/judge.md), a short reason first, then
relevance, correctness and formatting from 1 to 5.

Reason before score: measured on the instruct model, a bare 1-5 "is this correct" gave 5 to
70 of 73 pairs; the reason makes the model look at the page before it scores.
"""

from __future__ import annotations

from dataclasses import dataclass

from docsynth.core.inert import Inert
from docsynth.core.records import JUDGED_AXES, RATED_AXES
from docsynth.core.resources import shipped
from docsynth.llm.backends import ChatRequest
from docsynth.llm.parse import ParseError
from docsynth.llm.prompts import Template, load_template
from docsynth.verify.ask import NUMBERED, STRING_CHAR, reply_list

MAX_REASON_CHARS = 240


@dataclass(slots=True)
class Rating:
    reason: str
    scores: dict[str, int]  # axis -> 1..5 (JUDGED_AXES; RATED_AXES for a judge that sees the images)


def judge_template(vision: bool = False) -> Template:
    """The text judge, or the one that sees the page images and rates the visual axes too."""
    return load_template(shipped("prompts") / "verify" / ("judge_visual.md" if vision else "judge.md"))


def judge_axes(vision: bool) -> tuple[str, ...]:
    return RATED_AXES if vision else JUDGED_AXES


def ratings_schema(n: int, axes: tuple[str, ...] = JUDGED_AXES) -> dict:
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    item = {"type": "object", "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
                                             **{a: score for a in axes}},
            "required": ["reason", *axes], "additionalProperties": False}
    return {"type": "object", "properties": {"ratings": {"type": "array", "items": item, "minItems": n, "maxItems": n}},
            "required": ["ratings"], "additionalProperties": False}


def ratings_regex(n: int, axes: tuple[str, ...] = JUDGED_AXES) -> str:
    """The schema's JSON written compactly, as a regex (see ChatRequest.regex), each reason led by
    its pair's number, as the round trip's answers are (docsynth.verify.ask.answers_regex)."""
    char = STRING_CHAR
    items = [rf'\{{"reason": ?"{i}\. {char}{{1,{MAX_REASON_CHARS}}}"'
             + "".join(rf', ?"{a}": ?[1-5]' for a in axes) + r"\}" for i in range(1, n + 1)]
    return r'\{"ratings": ?\[' + ", ?".join(items) + r"\]\}"


def judge_request(template: Template, inert: Inert, text: str, questions: list[str], answers: list[str], seed: int,
                  guided: bool, images: list[dict] | None = None) -> ChatRequest:
    """The text is the candidate's own (already inert and quoted); the pairs are model output,
    made inert here (docsynth.core.inert). With images (chat image parts), the judge sees the
    pages and rates the visual axes too."""
    axes = judge_axes(images is not None)
    pairs = "\n".join(f"{i}. Q: {' '.join(inert(q).split())}\n   A: {' '.join(inert(a).split())}"
                      for i, (q, a) in enumerate(zip(questions, answers), 1))
    schema = ratings_schema(len(questions), axes) if guided else None
    msgs = template.render_parts(images, document=text, pairs=pairs) if images is not None else \
        template.render(document=text, pairs=pairs)
    return ChatRequest(msgs, seed, schema, regex=ratings_regex(len(questions), axes) if guided else None)


def parse_ratings(text: str, n: int, axes: tuple[str, ...] = JUDGED_AXES) -> list[Rating]:
    """n ratings from the judge's reply, in order; ParseError with the reason otherwise (a score
    outside 1..5, or missing, makes the reply unusable: a guess would be worse than no rating)."""
    out = []
    for i, item in enumerate(reply_list(text, "ratings", n, "ratings", "pairs"), 1):
        if not isinstance(item, dict):
            raise ParseError(f"rating {i} is not an object")
        scores = {}
        for a in axes:
            v = item.get(a)
            if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or not 1 <= v <= 5:
                raise ParseError(f"rating {i}: {a} is {v!r}, not an integer from 1 to 5")
            scores[a] = int(v)
        reason = NUMBERED.sub("", " ".join(str(item.get("reason") or "").split()), count=1)
        out.append(Rating(reason[:MAX_REASON_CHARS], scores))
    return out
