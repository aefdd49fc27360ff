"""Turning a model's text into validated question/answer pairs.

The expected output is a JSON list of {"question", "answer"}. Parsing is tolerant of
what models do around it: code fences, prose before or after, a wrapping object
({"pairs": [...]}), a single object, raw control characters inside strings (small
models under guided decoding emit them), and plain "Q: ... A: ..." lines from a
few-shot completion prompt. Anything else is a ParseError with a reason, never a
crash; the caller counts it and may retry.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from docsynth.core.inert import GENERIC


class QAPair(BaseModel):
    """One question and its answer, both non-empty after trimming."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)

    @field_validator("question", "answer", mode="before")
    @classmethod
    def _scalar_text(cls, v):
        if isinstance(v, bool) or v is None:
            raise ValueError("must be text")
        if isinstance(v, int | float):
            return str(v)  # "answer": 42 is a fine answer
        # No control-token string reaches a dataset, where a training chat template would read
        # it as a turn boundary (docsynth.core.inert).
        return GENERIC(v) if isinstance(v, str) else v


class ParseError(ValueError):
    """The text holds no usable QA pairs; str(e) is the reject reason."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_QA_LINE = re.compile(r"^\s*(?:\d+[.)]\s*)?(Q|Question|A|Answer)\s*[:.-]\s*(.*)$", re.I)
_WRAPPER_KEYS = ("pairs", "qa_pairs", "questions", "qa", "items", "data", "results")


def qa_json_schema(max_pairs: int, max_chars: int) -> dict:
    """JSON schema of the expected output, for guided decoding. Bounds on items and string
    lengths keep a weak model from running to the token limit."""
    text = {"type": "string", "minLength": 1, "maxLength": max_chars}
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": max_pairs,
        "items": {"type": "object", "properties": {"question": text, "answer": text},
                  "required": ["question", "answer"], "additionalProperties": False},
    }


def parse_qa(text: str) -> list[QAPair]:
    """QA pairs from a completion; ParseError says why there are none."""
    if not text or not text.strip():
        raise ParseError("empty completion")
    for candidate in json_candidates(text):
        try:
            data = json.loads(candidate, strict=False)
        except ValueError:
            continue
        return _validate(data)
    pairs = _qa_lines(text)
    if pairs:
        return pairs
    if "[" in text or "{" in text:
        raise ParseError("malformed JSON: no parseable QA list in the completion (truncated or invalid)")
    raise ParseError("no JSON and no 'Q:'/'A:' lines in the completion")


def json_candidates(text: str):
    """Strings that may be the JSON payload, most specific first."""
    for m in _FENCE.finditer(text):
        yield m.group(1).strip()
    stripped = text.strip()
    yield stripped
    for opener, closer in (("[", "]"), ("{", "}")):
        start = stripped.find(opener)
        while start != -1:
            end = _matching(stripped, start, opener, closer)
            if end is not None:
                yield stripped[start:end + 1]
            start = stripped.find(opener, start + 1)


def _matching(s: str, start: int, opener: str, closer: str) -> int | None:
    """Index of the bracket closing s[start], skipping strings; None if unbalanced."""
    depth, in_str, esc = 0, False, False
    for i in range(start, len(s)):
        c = s[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
    return None


def _validate(data) -> list[QAPair]:
    if isinstance(data, dict):
        inner = next((data[k] for k in _WRAPPER_KEYS if isinstance(data.get(k), list)), None)
        data = inner if inner is not None else [data]
    if not isinstance(data, list):
        raise ParseError(f"JSON is a {type(data).__name__}, not a list of QA pairs")
    if not data:
        raise ParseError("empty QA list")
    pairs, problems = [], []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(f"item {i} is a {type(item).__name__}")
            continue
        try:
            pairs.append(QAPair.model_validate(_normalise_keys(item)))
        except ValidationError as e:
            problems.append(f"item {i}: " + "; ".join(f"{'.'.join(map(str, x['loc']))} {x['msg']}" for x in e.errors()))
    if not pairs:
        raise ParseError("no valid QA pair: " + ", ".join(problems[:3]))
    return pairs


def _normalise_keys(item: dict) -> dict:
    """Accept the common synonyms models use for the two keys."""
    low = {str(k).strip().lower(): v for k, v in item.items()}
    q = next((low[k] for k in ("question", "q", "query") if k in low), None)
    a = next((low[k] for k in ("answer", "a", "response") if k in low), None)
    return {"question": q, "answer": a}


def _qa_lines(text: str) -> list[QAPair]:
    """Pairs from 'Q: ...' / 'A: ...' lines (few-shot completion output); continuation
    lines extend the current field."""
    pairs: list[QAPair] = []
    q: list[str] | None = None
    a: list[str] | None = None

    def flush() -> None:
        if q and a:
            try:
                pairs.append(QAPair(question=" ".join(q), answer=" ".join(a)))
            except ValidationError:
                pass

    for line in text.splitlines():
        m = _QA_LINE.match(line)
        if m and m.group(1).lower().startswith("q"):
            flush()
            q, a = [m.group(2).strip()], None
        elif m and q is not None and a is None:
            a = [m.group(2).strip()]
        elif line.strip() and a is not None:
            a.append(line.strip())
        elif line.strip() and q is not None and a is None:
            q.append(line.strip())
        elif not line.strip() and a is not None:
            flush()
            q, a = None, None
    flush()
    return pairs
