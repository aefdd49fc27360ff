"""Any QA set through the verifier: JSONL records of {"question", "answer", "context"} in, one
verdict per record out, so the verifier can be measured on labelled data (bench/quality.py)
and any dataset checked. Records that share a context (and an optional "sample" key) go in one
request, as a sample's do, PER_REQUEST questions at most. A record's optional "template" is its
generation template: one in verify.skip_templates is rated by the judge but not round-tripped; its
optional "evidence" ({page, start, end, kind, key, text}, offsets in its context) is an
answer-first pair's span, for the evidence check. Each verdict carries every check's own
("checks": verify.checks, None where one did not run or apply)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from docsynth.core.errors import DocsynthError
from docsynth.core.inert import Inert
from docsynth.config.recipe import GenerateConfig, VerifyConfig
from docsynth.llm.session import Session, open_session
from docsynth.llm.prompts import format_document
from docsynth.core.records import RATED_AXES
from docsynth.verify.ask import answer_template
from docsynth.verify.check import Checker
from docsynth.verify.stage import verifier_config

FIELDS = ("question", "answer", "context")
PER_REQUEST = 8  # questions per request at most: what a sample of 1-2 pages asks (pairs_per_page 4)


def read_pairs(path: Path) -> tuple[list[dict], list[dict]]:
    """(records, problems): a line that is not a JSON object with the three text fields is a
    problem naming its line, and the others go on."""
    records, problems = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DocsynthError(f"--pairs {path}: cannot read it ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError as e:
            problems.append({"line": n, "error": f"not JSON ({e.args[0] if e.args else e})"})
            continue
        bad = [f for f in FIELDS if not isinstance(r, dict) or not isinstance(r.get(f), str) or not r[f].strip()]
        if bad:
            problems.append({"line": n, "error": f"needs text fields {', '.join(FIELDS)}; missing or empty: "
                                                  f"{', '.join(bad)}"})
            continue
        records.append({**r, "line": n})
    return records, problems


def check_pairs(cfg: VerifyConfig, generate: GenerateConfig, seed: int, base: Path, records: list[dict],
                session: Session | None = None) -> Iterator[dict]:
    """A verdict per record, in file order; contexts are sent verify.batch_samples at a time."""
    session = session or open_session(verifier_config(cfg, generate), base)
    template, inert = answer_template(), Inert(getattr(session.tokens, "specials", ()))
    checker = Checker(cfg, seed, session)
    groups: dict[tuple, list[dict]] = {}
    chunks: dict[tuple, int] = {}
    for r in records:  # as a sample's questions: one context (and "sample", if given), PER_REQUEST at most
        key = (r["context"], str(r.get("sample", "")), str(r.get("template", "pairs")))
        n = chunks.setdefault(key, 0)
        if len(groups.setdefault((*key, n), [])) >= PER_REQUEST:
            chunks[key] = n = n + 1
            groups[(*key, n)] = []
        groups[(*key, n)].append(r)
    contexts = list(groups)
    out: list[dict] = []
    for i in range(0, len(contexts), cfg.batch_samples):
        batch = contexts[i:i + cfg.batch_samples]
        rows = [{"sample_id": f"pairs:{groups[c][0]['line']}", "template": c[2],
                 "text": format_document([template.quote(inert(c[0]))]), "pages": [0],
                 "questions": [r["question"] for r in groups[c]], "answers": [r["answer"] for r in groups[c]],
                 "evidence": [r.get("evidence") for r in groups[c]]}
                for c in batch]
        for c, v in zip(batch, checker.check(rows)):
            for j, r in enumerate(groups[c]):
                out.append({"line": r["line"], "question": r["question"], "answer": r["answer"],
                            "reanswer": v.reanswers[j], "agree": v.verified[j], "how": v.how[j], "reason": v.reasons[j],
                            "checks": v.checks[j],
                            **({"ratings": {a: getattr(v, a)[j] for a in RATED_AXES},
                                "judge_reason": v.judge_reasons[j]} if cfg.judge else {}),
                            **({"label": r["label"]} if "label" in r else {})})
    yield from sorted(out, key=lambda x: x["line"])
