"""Answer-first generation (generate.strategy: answer_first; issue 30): the answers are read off
each sample's text deterministically (docsynth.core.spans), and the model writes one question
per answer, seeing the document and where the answer stands (prompts/answer_first/question.md).

Why: a small model writes a wrong answer far more often than a wrong question. Measured on the
12 sample pages with Qwen2.5-Coder-1.5B-Instruct, a quarter of its model-first pairs were wrong
before verification; an answer taken from the page is right by construction, and what is left
to check is whether the question asks for it (the verify stage's choice, vote and type checks).

Each request is one span: the document comes first, so the engine's prefix cache shares it
across the spans of a page. Each pair records its evidence: the page, the span and its offsets
in the sample's text, which the evidence check reads back.
"""

from __future__ import annotations

import functools
import hashlib
import json

import regex

from docsynth.config.recipe import GenerateConfig
from docsynth.core.resources import shipped
from docsynth.core.spans import KINDS, Evidence, Span, document_spans, pick_spans
from docsynth.core.text import normalise
from docsynth.llm.backends import ChatRequest
from docsynth.llm.parse import QAPair
from docsynth.llm.prompts import Template, load_template
from docsynth.generate.samples import Prompter, Sample, derive_seed

_LEAD = regex.compile(r"^\s*(?:\*\*)?(?:question|q)\s*[:.-]\s*(?:\*\*)?\s*", regex.I)
# The reply is one question: guided (the in-process engine) to one line that starts with a letter
# (Latin, Greek, Cyrillic, CJK, Hangul) and ends in "?", at most 251 characters, so at most 251
# tokens. Classes and a bound, as the verifier's strings are (docsynth.verify.ask.STRING_CHAR):
# cheap for xgrammar.
QUESTION_REGEX = "[A-Za-z\u00c0-\u024f\u0370-\u04ff\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u00bf\u00a1][^\\n?]{7,249}\\?"
QUESTION_SCHEMA = {"type": "string", "minLength": 9, "maxLength": 251}


@functools.cache
def question_template() -> Template:
    return load_template(shipped("prompts") / "answer_first" / "question.md")


def is_answer_first(g: GenerateConfig, sample: Sample) -> bool:
    return g.strategy == "answer_first" and sample.template in g.answer_first.templates and not g.vision


def spans_for(g: GenerateConfig, seed: int, sample: Sample, n: int) -> list[tuple[int, Span]]:
    """The spans a sample asks about: its template's kinds, spread over kinds and lines, ranked
    by a hash of the run's seed and the span's place (the same recipe, the same spans)."""
    cfg = g.answer_first
    order = tuple(cfg.kinds.get(sample.template, KINDS))

    def rank(s: Span) -> bytes:
        return hashlib.sha256(f"{seed}:{sample.sample_id}:{s.start}:{s.text}".encode()).digest()

    return pick_spans(document_spans(sample.text, sample.pages), n, order, rank)


_SENTENCE_END = regex.compile(r"[.!?](?=\s+[\p{Lu}\d\"(]|\s*$)|\n\s*\n")


def passage(text: str, span: Span) -> str:
    """Where an answer stands, for the question writer, the answer marked [[ ]]: a table cell by
    its row and column, a key's value under its key, else the sentence around it (lines joined:
    a sentence broken over two lines is still one)."""
    marked = f"[[{span.text}]]"
    if span.kind == "cell" and " / " in span.key:
        row, col = span.key.split(" / ", 1)
        return f'the table row "{row}", column "{col}": {marked} (the row reads: "{" ".join(span.line.split())}")'
    if span.key:
        return f'"{span.key}: {marked}"'
    lo = max(0, span.start - 400)
    ends = [m.end() for m in _SENTENCE_END.finditer(text, lo, span.start)]
    start = ends[-1] if ends else lo
    m = _SENTENCE_END.search(text, span.end, min(len(text), span.end + 400))
    end = m.end() if m else min(len(text), span.end + 200)
    before, after = " ".join(text[start:span.start].split()), " ".join(text[span.end:end].split())
    return f'"{before} {marked} {after}"'.replace('" ', '"').replace(' "', '"')


def question_request(template: Template, sample: Sample, span: Span, seed: int) -> ChatRequest:
    """The span and its passage come from the sample's text, already made inert and quoted (the
    Prompter did): they are slot values, never template source."""
    return ChatRequest(template.render(document=sample.text, answer=span.text, evidence=passage(sample.text, span)),
                       seed, QUESTION_SCHEMA, regex=QUESTION_REGEX)


def read_question(text: str | None, answer: str, max_chars: int) -> tuple[str | None, str]:
    """The question in the model's reply (a JSON string where a server followed QUESTION_SCHEMA), or
    None with why it cannot be used."""
    text = (text or "").strip()
    if text.startswith('"'):
        try:
            text = str(json.loads(text))
        except ValueError:
            pass
    lines = [x.strip() for x in text.split("\n") if x.strip()]
    if not lines:
        return None, "empty question"
    q = _LEAD.sub("", lines[0]).strip().strip('"“”').strip()
    if "?" in q:
        q = q[:q.index("?") + 1]
    if len(q) < 8 or not regex.search(r"\p{L}", q):
        return None, "empty question"
    if len(q) > max_chars:
        return None, "question too long"
    if not q.endswith("?"):
        return None, "not a question"
    a = normalise(answer)
    if a and f" {a} " in f" {normalise(q)} ":
        return None, "question gives the answer"
    return q, ""


def plan_questions(g: GenerateConfig, seed: int, prompter: Prompter, samples: list[Sample]):
    """(sample, [(page, span)]) for each answer-first sample with its text fitted (its prompt
    rendered once, as model-first does); samples without spans and samples whose prompt cannot
    be made are yielded with None (the caller falls back or rejects)."""
    for s in samples:
        try:
            prompter.request(s, 0)
        except ValueError:
            yield s, None
            continue
        found = spans_for(g, seed, s, prompter.num_pairs(s))
        yield s, (found or None)


def ask(session, cfg: GenerateConfig, seed: int, template: Template, planned: list[tuple[Sample, list[tuple[int, Span]]]]):
    """One backend call for every span of every sample: (sample, [(pair, evidence) ...], completions,
    seeds, dropped reasons) per sample."""
    base_seed = cfg.sampling.seed if cfg.sampling.seed is not None else seed
    sampling = cfg.sampling.model_copy(update={"max_tokens": cfg.answer_first.max_question_tokens, "stop": ["\n"],
                                               "temperature": cfg.answer_first.temperature})
    requests = [question_request(template, s, span, derive_seed(base_seed, f"{s.sample_id}@{span.start}"))
                for s, spans in planned for _, span in spans]
    replies = session.backend.complete(requests, sampling) if requests else []
    i = 0
    for s, spans in planned:
        got, dropped, errors = [], {}, []
        mine = replies[i:i + len(spans)]
        seeds = [r.seed for r in requests[i:i + len(spans)]]
        i += len(spans)
        for (page, span), reply in zip(spans, mine):
            if reply.error is not None:
                errors.append(f"backend: {reply.error}")
                continue
            q, why = read_question(reply.text, span.text, cfg.max_pair_chars)
            if q is None:
                dropped[why] = dropped.get(why, 0) + 1
                continue
            ev = Evidence(page, span.start, span.end, span.kind, span.key, span.text)
            got.append((QAPair(question=q, answer=span.text), ev))
        yield s, got, mine, seeds, dropped, errors
