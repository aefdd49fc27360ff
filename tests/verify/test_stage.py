"""The verify stage on real ingest output (real PDFs through real pymupdf) and real generate and
write stages, with scripted backends for the generator and the verifier (their logic); the
real engine runs it end to end in test_engine.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docsynth.core.errors import DocsynthError
from docsynth.config.recipe import Recipe
from docsynth.executors.local import run_generate, run_ingest, run_verify, run_write
from docsynth.llm.backends import ChatRequest, Completion
from docsynth.verify.pairs import check_pairs, read_pairs
from tests.conftest import ROOT, text_pdf
from tests.generate.conftest import scripted_session
from tests.cli import invoke

PAGE = ("The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros for the quay. "
        "Chair Ines Duarte thanked the 58 volunteers.")
# The generator's pairs: a wrong amount made of the page's own words (so the lexical filters keep
# it, as they kept gemma's "17.1 million pounds"), and two right ones in other words.
GENERATED = [{"question": "What budget was approved?", "answer": "58 million euros"},
             {"question": "When did the board meet?", "answer": "3 March 2024"},
             {"question": "Who chaired the meeting?", "answer": "Ines Duarte"}]
# What a careful reader of the page answers.
TRUTH = {"What budget was approved?": "€4,200,000", "When did the board meet?": "March 3, 2024",
         "Who chaired the meeting?": "The chair, Ines Duarte", "How many volunteers?": "58"}


def recipe(**extra) -> Recipe:
    return Recipe.model_validate({"inputs": {"docs_per_task": 1}, "ingest": {"workers": 1, "ocr": {"mode": "never"}},
                                  "generate": {"guided_json": False, "templates": ["specific_facts", "overview"],
                                               "max_pages_per_sample": 1},
                                  "verify": {"enabled": True}, **extra})


def questions_of(req: ChatRequest) -> list[str]:
    return re.findall(r"(?m)^\d+\. (.*)$", req.messages[-1]["content"].split("Questions:")[1])


def verifier(req: ChatRequest) -> str:
    return json.dumps({"answers": [TRUTH.get(q, "not stated") for q in questions_of(req)]})


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    for i in range(6):
        text_pdf(d / f"minutes{i}.pdf", [f"Minutes {i}. " + PAGE])
    run = tmp_path_factory.mktemp("run")
    run_ingest(Recipe.model_validate(
        {"inputs": {"paths": [str(d)], "docs_per_task": 1}, "ingest": {"workers": 1, "ocr": {"mode": "never"}}}), d, run)
    run_generate(recipe(), ROOT, run, run, session=scripted_session(lambda r: json.dumps(GENERATED)))
    return run


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def verdicts(run: Path) -> list[dict]:
    return [r for p in sorted((run / "verdicts").glob("task-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_verdicts_record_the_reanswer_the_rule_and_the_reason_and_write_reports_them(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")
    session = scripted_session(verifier)
    s = run_verify(recipe(), ROOT, run, session=session)
    rows = verdicts(run)
    facts = [r for r in rows if r["template"] == "specific_facts"]
    overview = [r for r in rows if r["template"] == "overview"]
    assert facts and overview and len(rows) == 6
    for r in facts:
        assert r["verified"] == [False, True, True]
        assert r["reanswers"] == ["€4,200,000", "March 3, 2024", "The chair, Ines Duarte"]
        assert r["how"] == ["numbers", "numbers", "containment"]
        assert "58000000 vs 4200000" in r["reasons"][0]
    for r in overview:  # verify.skip_templates: rated, not round-tripped
        assert r["verified"] == [None] * 3 and r["how"] == ["skipped template"] * 3
    # One request per verified sample, the document first, the answers never shown.
    sent = [q for call in session.backend.calls for q in call]
    assert len(sent) == len(facts) and all(q.messages[0]["content"].startswith("<document>") for q in sent)
    assert all("58 million" not in q.messages[0]["content"] for q in sent)
    assert (s.checked, s.agreed, s.disagreed) == (3 * len(facts), 2 * len(facts), {"numbers": len(facts)})
    assert s.unchecked == {"skipped template": 3 * len(overview)}
    manifest = json.loads((run / "verify-manifest.json").read_text())
    assert manifest["verified_share"] == pytest.approx(0.667, abs=1e-3)

    # Recorded and kept by default; the `verified` filter drops the disagreeing pairs.
    kept = run_write(recipe(), run)
    assert kept.pairs_out == 18 and kept.quality["verified_share"] == pytest.approx(0.667, abs=1e-3)
    card = (run / "dataset" / "README.md").read_text()
    assert "## Quality" in card and "agreed (67%)" in card
    from docsynth.dataset.stats import dataset_stats

    assert dataset_stats(run).quality == kept.quality  # docsynth stats shows what the card says
    strict = run_write(recipe(filters=["code", "verified"]), run)
    assert strict.pairs_out == 18 - len(facts) and strict.dropped == {"verified": len(facts)}
    assert strict.quality["kept_verified_share"] == 1.0
    rejects = [json.loads(x) for x in (run / "filter-rejects.jsonl").read_text().splitlines()]
    assert {r["answer"] for r in rejects} == {"58 million euros"}
    assert all("verified: the verifier's answer disagrees: the numbers disagree" in r["reason"] for r in rejects)
    unchecked = run_write(recipe(filters=[{"name": "verified", "unchecked": "drop"}]), run)
    assert unchecked.pairs_out == 2 * len(facts)


def test_a_rerun_reuses_every_verdict_and_new_filters_do_not_redo_verification(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")
    run_verify(recipe(), ROOT, run, session=scripted_session(verifier))
    again = scripted_session(verifier)
    s = run_verify(recipe(), ROOT, run, session=again)
    assert s.tasks_skipped == s.tasks == 6 and again.backend.calls == []
    changed = recipe(verify={"enabled": True, "min_f1": 0.9})  # a verify setting redoes it
    s = run_verify(changed, ROOT, run, session=scripted_session(verifier))
    assert s.tasks_skipped == 0


def test_questions_per_request_asks_each_question_alone_and_a_bad_reply_costs_only_its_own(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")
    session = scripted_session(lambda r: "no JSON here" if questions_of(r) == ["Who chaired the meeting?"]
                               else verifier(r))
    one = recipe(verify={"enabled": True, "questions_per_request": 1})
    s = run_verify(one, ROOT, run, session=session)
    facts = [r for r in verdicts(run) if r["template"] == "specific_facts"]
    sent = [q for call in session.backend.calls for q in call]
    assert len(sent) == 3 * len(facts) and all(len(questions_of(q)) == 1 for q in sent)
    assert all(q.messages[0]["content"].startswith("<document>") for q in sent)  # the shared prefix first
    # Each question's own seed, so a sample's requests do not all decode alike.
    assert len({q.seed for q in sent}) == len(sent)
    for r in facts:  # answers back in question order; the unparsable reply leaves its question alone unchecked
        assert r["reanswers"] == ["€4,200,000", "March 3, 2024", None]
        assert r["verified"] == [False, True, None] and r["how"][2] == "unparsable reply"
    assert (s.checked, s.agreed) == (2 * len(facts), len(facts))
    assert run_verify(recipe(), ROOT, run, session=scripted_session(verifier)).tasks_skipped == 0  # a new key


def test_unparsable_or_failed_replies_leave_pairs_unchecked_and_named(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")
    replies = iter(["I think the answers are fine.", Completion(None, error="HTTP 500 after 5 retries"),
                    json.dumps({"answers": ["only one"]})])
    s = run_verify(recipe(), ROOT, run, session=scripted_session(lambda r: next(replies)))
    rows = [r for r in verdicts(run) if r["template"] == "specific_facts"]
    whys = {r["how"][0] for r in rows}
    assert whys <= {"unparsable reply", "backend error"} and s.checked == 0
    assert any("3 answers" in r["reasons"][0] or "1 answers for 3" in r["reasons"][0] for r in rows) or \
        any("no JSON" in r["reasons"][0] for r in rows)


def test_stale_verdicts_are_refused_when_verification_is_on(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")
    run_verify(recipe(), ROOT, run, session=scripted_session(verifier))
    other = [{"question": "How many volunteers?", "answer": "58"}]
    run_generate(recipe(generate={"guided_json": False, "templates": ["specific_facts"], "max_pages_per_sample": 1,
                                  "pairs_per_page": 1}),
                 ROOT, run, run, session=scripted_session(lambda r: json.dumps(other)))
    with pytest.raises(DocsynthError, match="no verdicts for their current content.*docsynth verify"):
        run_write(recipe(), run)
    off = run_write(recipe(verify={"enabled": False}), run)  # not asked: written unverified
    assert off.quality["verified"] is False


def test_any_qa_set_is_checked_from_a_jsonl_file(tmp_path):
    f = tmp_path / "pairs.jsonl"
    lines = [{"question": "When did the board meet?", "answer": "3 March 2024", "context": PAGE, "label": "correct"},
             {"question": "What budget was approved?", "answer": "17.1 million euros", "context": PAGE},
             "not json", {"question": "Who?", "answer": "", "context": PAGE},
             {"question": "How many volunteers?", "answer": "58", "context": "Another page: 58 volunteers."}]
    f.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    records, problems = read_pairs(f)
    assert [p["line"] for p in problems] == [3, 4] and "answer" in problems[1]["error"]
    session = scripted_session(verifier)
    r = recipe()
    out = list(check_pairs(r.verify, r.generate, r.seed, ROOT, records, session))
    assert [(v["line"], v["agree"], v["how"]) for v in out] == [(1, True, "numbers"), (2, False, "numbers"),
                                                                 (5, True, "exact")]
    assert out[0]["label"] == "correct" and len(session.backend.calls[0]) == 2  # one request per context


def test_verify_pairs_names_each_skipped_line_in_plain_text(tmp_path):
    """Through the CLI: each line it cannot use is named, and no markup is left in the text."""

    f = tmp_path / "pairs.jsonl"
    f.write_text('not json [bold]x[/bold]\n{"question": "Who?", "answer": "", "context": "c"}\n')
    res = invoke("verify", "--pairs", str(f), cwd=ROOT)
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and f"skipped {f}:1: not JSON" in said and f"skipped {f}:2: needs text fields" in said
    assert "[yellow]" not in res.stderr and "[/yellow]" not in res.stderr and "no usable records" in said


def pairs_of(req: ChatRequest) -> list[tuple[str, str]]:
    return re.findall(r"(?m)^\d+\. Q: (.*)\n   A: (.*)$", req.messages[-1]["content"].split("Pairs:")[1])


def judge_and_verifier(req: ChatRequest) -> str:
    """Round trips as `verifier`; the judge scores correctness 1 where the answer is not the
    careful reader's, formatting 4, relevance 5; and writes its reason first."""
    if "Pairs:" not in req.messages[-1]["content"]:
        return verifier(req)
    return json.dumps({"ratings": [
        {"reason": f"{i}. the page says {TRUTH.get(q, 'something')}", "relevance": 5,
         "correctness": 1 if a.startswith("58 million") else 5, "formatting": 4}
        for i, (q, a) in enumerate(pairs_of(req), 1)]})


def test_the_judge_rates_every_pair_reason_first_and_write_gives_finevision_columns(generated, tmp_path):
    import datasets

    run = copy_run(generated, tmp_path / "run")
    judged = recipe(verify={"enabled": True, "judge": True})
    session = scripted_session(judge_and_verifier)
    run_verify(judged, ROOT, run, session=session)
    rows = verdicts(run)
    for r in rows:  # every template is rated, overview too (it is not round-tripped)
        assert r["relevance"] == [5, 5, 5] and r["formatting"] == [4, 4, 4] and r["correctness"] == [1, 5, 5]
        assert r["judge_reasons"][1] == "the page says March 3, 2024"  # its number stripped
    # The round trips go first, then the judge's requests, each with the document first.
    kinds = [["Pairs:" in q.messages[-1]["content"] for q in call] for call in session.backend.calls]
    assert kinds == [[False] * 3, [True] * 6]
    assert all(q.messages[0]["content"].startswith("<document>") for call in session.backend.calls for q in call)

    s = run_write(judged, run)  # recorded and kept by default
    assert s.pairs_out == 18 and s.quality["rated"] == 18
    assert s.quality["ratings"]["correctness"] == {"1": 6, "5": 12}
    card = (run / "dataset" / "README.md").read_text()
    assert "| correctness | 6 | 0 | 0 | 0 | 12 | 0 |" in card
    ds = datasets.load_dataset(str(run / "dataset"), split="train")
    row = next(r for r in ds if r["texts"][0]["assistant"].startswith("58 million"))
    assert row["correctness_ratings"] == [1, 5, 5] and row["correctness_min"] == 1
    assert row["relevance_min"] == 5 and row["visual_dependency_ratings"] == [None] * 3
    assert row["verified"] in ([False, True, True], [None] * 3)
    # nanoVLM's *_min_rating options (data/datasets.py, BaseDataset._get_messages) skip a turn whose
    # rating is below the floor and pass a null one; its formatting floor 5 drops every turn here.
    def nanovlm_turns(item, **floors):
        return [t for i, t in enumerate(item["texts"])
                if not any(item.get(f"{ax}_ratings") is not None and item[f"{ax}_ratings"][i] is not None
                           and item[f"{ax}_ratings"][i] < floor for ax, floor in floors.items())]
    assert len(nanovlm_turns(row, relevance=4)) == 3 and nanovlm_turns(row, formatting=5) == []

    strict = run_write(recipe(verify={"enabled": True, "judge": True},
                              filters=[{"name": "min_rating", "axes": {"correctness": 4}}]), run)
    assert strict.pairs_out == 12 and strict.dropped == {"min_rating": 6}
    assert "min_rating: correctness 1 < 4" in (run / "filter-rejects.jsonl").read_text()


def test_a_judge_reply_with_a_score_out_of_range_leaves_the_pairs_unrated_and_says_why(generated, tmp_path):
    run = copy_run(generated, tmp_path / "run")

    def bad_judge(req: ChatRequest) -> str:
        if "Pairs:" not in req.messages[-1]["content"]:
            return verifier(req)
        return json.dumps({"ratings": [{"reason": "fine", "relevance": 7, "correctness": 5, "formatting": 5}] * 3})

    run_verify(recipe(verify={"enabled": True, "judge": True}), ROOT, run, session=scripted_session(bad_judge))
    r = verdicts(run)[0]
    assert r["relevance"] == [None] * 3 and "relevance is 7, not an integer from 1 to 5" in r["judge_reasons"][0]
    assert r["judge_raw"].startswith('{"ratings"')
    with pytest.raises(ValueError, match="greater than or equal to 1|less than or equal to 5"):
        recipe(filters=[{"name": "min_rating", "axes": {"correctness": 6}}])


def test_a_judge_that_sees_the_pages_checks_against_them_and_fills_the_visual_columns(generated, tmp_path):
    """verify.vision: the round trip and the judge get the candidate's page images (fitted to the
    budget) before the document, the judge uses its visual template, and its visual scores land in
    FineVision's visual_dependency / image_correspondence columns."""
    import base64
    import io

    import datasets
    from PIL import Image

    run = copy_run(generated, tmp_path / "run")
    seen = []

    def visual(req: ChatRequest) -> str:
        parts = req.messages[-1]["content"]
        images = [p for p in parts if p["type"] == "image_url"]
        seen.append((parts[0]["type"], [Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",")[1])))
                                        .size for p in images]))
        text = "\n".join(p["text"] for p in parts if p["type"] == "text")
        if "Pairs:" not in text:
            qs = re.findall(r"(?m)^\d+\. (.*)$", text.split("Questions:")[1])
            return json.dumps({"answers": [TRUTH.get(q, "not stated") for q in qs]})
        assert "visual_dependency" in text and "image_correspondence" in text  # the visual judge's template
        return json.dumps({"ratings": [{"reason": f"{i}. the image shows it", "relevance": 5, "correctness": 4,
                                        "formatting": 5, "visual_dependency": 2, "image_correspondence": 4}
                                       for i in (1, 2, 3)]})

    r = recipe(verify={"enabled": True, "judge": True, "vision": True},
               generate={"guided_json": False, "templates": ["specific_facts", "overview"], "max_pages_per_sample": 1,
                         "max_image_pixels": 50_000})
    s = run_verify(r, ROOT, run, session=scripted_session(visual))
    assert s.checked == 9 and len(seen) == 9 and all(first == "image_url" and len(sizes) == 1 and sizes[0][0] * sizes[0][1] <= 50_000
                                           for first, sizes in seen)
    assert all(v["visual_dependency"] == [2, 2, 2] and v["image_correspondence"] == [4, 4, 4] for v in verdicts(run))
    w = run_write(r, run)
    assert w.quality["ratings"]["visual_dependency"] == {"2": 18}
    ds = datasets.load_dataset(str(run / "dataset"), split="train")
    assert all(x["visual_dependency_ratings"] == [2, 2, 2] and x["image_correspondence_min"] == 4 for x in ds)
