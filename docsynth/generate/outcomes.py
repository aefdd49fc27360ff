"""Asking the backend for a batch of samples: every sample's completions, retried with new
seeds while none parses, and merged into the pairs worth keeping."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from docsynth.generate.answerfirst import ask, is_answer_first, plan_questions, question_template
from docsynth.llm.backends import Completion
from docsynth.core.text import normalise
from docsynth.llm.parse import ParseError, QAPair, parse_qa
from docsynth.generate.samples import Prompter, Sample, derive_seed
from docsynth.llm.session import Session
from docsynth.config.recipe import GenerateConfig


@dataclass(slots=True)
class Outcome:
    """The result for one sample: merged pairs and the completions they came from, or a reject."""

    pairs: list[QAPair] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    attempts: int = 0
    dropped: Counter = field(default_factory=Counter)  # pairs left out, by reason
    reason: str = ""
    evidence: list[dict | None] = field(default_factory=list)  # per pair: answer-first's span (None: model-first)


def generate_outcomes(session: Session, prompter: Prompter, samples: list[Sample], cfg: GenerateConfig,
                      seed: int) -> dict[str, Outcome]:
    """Outcomes of every sample: one backend call for all (completions_per_sample requests each),
    then one per retry round for samples none of whose completions parsed, with new seeds."""
    base_seed = cfg.sampling.seed if cfg.sampling.seed is not None else seed
    k = cfg.completions_per_sample
    outcomes = {s.sample_id: Outcome() for s in samples}
    first = [s for s in samples if is_answer_first(cfg, s)]
    if first:
        samples = [s for s in samples if not is_answer_first(cfg, s)] + _answer_first(session, prompter, first,
                                                                                       cfg, seed, outcomes)
    pending = []
    for s in samples:
        try:
            prompter.request(s, 0)
            pending.append(s)
        except ValueError as e:
            outcomes[s.sample_id].reason = f"prompt: {e}"
    for attempt in range(cfg.retries + 1):
        if not pending:
            break
        requests = [prompter.request(s, derive_seed(base_seed, f"{s.sample_id}#{j}", attempt))
                    for s in pending for j in range(k)]
        completions = session.backend.complete(requests, cfg.sampling)
        retry = []
        for i, s in enumerate(pending):
            o = outcomes[s.sample_id]
            o.completions = completions[i * k:(i + 1) * k]
            o.seeds = [r.seed for r in requests[i * k:(i + 1) * k]]
            o.attempts = attempt + 1
            o.pairs, o.reason, o.dropped = merge_pairs(o.completions, prompter.shell(s))
            o.evidence = [None] * len(o.pairs)
            if not o.pairs and not o.reason.startswith("backend"):
                retry.append(s)
        pending = retry
    return outcomes


def _answer_first(session: Session, prompter: Prompter, samples: list[Sample], cfg: GenerateConfig, seed: int,
                  outcomes: dict[str, Outcome]) -> list[Sample]:
    """Outcomes of the answer-first samples (docsynth.generate.answerfirst); returns those with no
    candidate answer, to be asked model-first (answer_first.no_spans), else rejected."""
    planned, fallback = [], []
    for s, spans in plan_questions(cfg, seed, prompter, samples):
        if spans is not None:
            planned.append((s, spans))
        elif cfg.answer_first.no_spans == "model_first":
            fallback.append(s)
        else:
            outcomes[s.sample_id].reason = "answer-first: no candidate answer in the text"
    for s, got, replies, seeds, dropped, errors in ask(session, cfg, seed, question_template(), planned):
        o = outcomes[s.sample_id]
        o.pairs = [p for p, _ in got]
        o.evidence = [e.to_dict() for _, e in got]
        o.completions, o.seeds, o.attempts, o.dropped = replies, seeds, 1, Counter(dropped)
        if not o.pairs:
            o.reason = errors[0] if errors else "answer-first: no usable question (" + ", ".join(
                f"{k} {v}" for k, v in sorted(dropped.items())) + ")"
    return fallback


def merge_pairs(completions: list[Completion], shell: str) -> tuple[list[QAPair], str, Counter]:
    """The pairs of all completions of a sample, in order, leaving out a pair cut off by the
    token limit, repeated questions or answers, and pairs copied from the prompt itself (a
    small model echoes the template's examples). Also says why there are none."""
    pairs: list[QAPair] = []
    problems: list[str] = []
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    for c in completions:
        if c.error is not None:
            problems.append(f"backend: {c.error}")  # the backend already retried transport errors
            continue
        try:
            got = parse_qa(c.text or "")
        except ParseError as e:
            problems.append(f"parse: {e}")
            continue
        if c.finish_reason == "length" and len(got) > 1:
            got = got[:-1]
            dropped["cut off"] += 1
        for p in got:
            q, a = normalise(p.question), normalise(p.answer)
            if not q or not a or (f" {q} " in shell and f" {a} " in shell):
                dropped["copied from the prompt"] += 1
            elif q in seen or f"\0{a}" in seen:
                dropped["repeated"] += 1
            else:
                seen.update((q, f"\0{a}"))
                pairs.append(p)
    if pairs:
        return pairs, "", dropped
    if problems:
        return [], problems[0], dropped
    return [], "parse: every pair repeated the prompt's own text", dropped
