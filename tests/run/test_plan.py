"""`docsynth run --dry-run`: the plan counts what the run would do, before any engine starts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_ingest
from docsynth.executors.plan import plan_run
from docsynth.generate.samples import plan_samples
from tests.cli import invoke

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_pdfs"
BORN_DIGITAL = ["invoice.pdf", "table_report.pdf", "annual_report.pdf", "two_column_article.pdf", "lettre_fr.pdf"]


def recipe(**generate) -> Recipe:
    return Recipe.model_validate({
        "name": "planned", "inputs": {"paths": [str(SAMPLES / f) for f in BORN_DIGITAL]},
        "ingest": {"ocr": {"mode": "never"}, "workers": 1},
        "generate": {"backend": "openai", "model": "no-such-model", "context_tokens": 4096,
                     "templates": ["specific_facts", "tables_layout", "overview"], "max_pages_per_sample": 2, **generate},
        "verify": {"enabled": True, "checks": ["evidence", "choice", "vote"], "votes": 3}})


def test_the_plan_has_the_samples_and_templates_the_generate_stage_plans(tmp_path):
    r = recipe()
    plan = plan_run(r, ROOT)
    ingest = run_ingest(r, ROOT, tmp_path / "run")
    planned, rejects = Counter(), []
    for shard in sorted((tmp_path / "run" / "pages").glob("task-*.parquet")):
        planned.update(s.template for s in plan_samples(Path(shard), r.generate, r.seed, rejects))
    assert plan.documents == ingest.docs == 5 and plan.pages == ingest.pages
    assert plan.samples == sum(planned.values()) and plan.templates == dict(sorted(planned.items()))
    assert plan.generate_requests == plan.samples and plan.pairs_asked == 4 * plan.pages - 4 * sum(plan.pages_gated.values())
    assert plan.verify_requests == plan.pairs_asked * (0 + 1 + 3) and plan.tokens_from == "3 characters a token"
    assert plan.prompt_tokens > plan.samples * 100  # each request holds its pages' text


def test_answer_first_plans_a_request_per_span_and_the_cli_prints_it_without_writing(tmp_path):
    plan = plan_run(recipe(strategy="answer_first"), ROOT)
    model_first = plan.templates["overview"]  # overview stays model-first: one request a sample
    assert plan.generate_requests > plan.samples and plan.generate_requests - model_first <= plan.pairs_asked
    (tmp_path / "r.json").write_text(json.dumps(recipe().model_dump(mode="json")))
    res = invoke("run", str(tmp_path / "r.json"), "--dry-run", "--json",
                          "--limit", "2", "--set", "generate.strategy=answer_first", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    limited = json.loads(res.stdout)
    assert limited["documents"] == 2 and 0 < limited["samples"] < plan.samples and limited["model_requests"] > 0
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
    human = invoke("run", str(tmp_path / "r.json"), "--dry-run", cwd=tmp_path)
    assert human.returncode == 0 and "model requests" in human.stdout and "nothing written" in human.stdout
