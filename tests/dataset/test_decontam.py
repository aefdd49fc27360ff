"""Decontamination against evaluation sets: planted copies of real pages are found, distinct pages
and questions are not, the command writes a clean copy with its report and card, reuses its
hashes, and refuses bad evaluation sets before any work."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from docsynth.config.decontam import DecontamConfig, EvalSet
from docsynth.hashing.hamming import HammingIndex
from docsynth.decontam.index import DecontamError, EvalIndex
from docsynth.decontam.hashes import hash_rows
from tests.pages import word
from tests.dataset.decontam_data import ALTERATIONS, altered, cauldron_dataset, docvqa_set, pages, render
from tests.cli import invoke as docsynth

# annual_report.pdf and scanned_report.pdf are the same two pages (one scanned): true copies.
SAME = {("annual_report.pdf", 0, "scanned_report.pdf", 0), ("annual_report.pdf", 1, "scanned_report.pdf", 1)}


def _name(page) -> tuple[str, int]:
    return (Path(page.parent.name or "synthetic").name, page.number)


def _same(a, b) -> bool:
    return a == b or (*a, *b) in SAME or (*b, *a) in SAME


def _question(rng: random.Random) -> tuple[str, str]:
    """A question of one of several shapes about made-up names (tests.pages words), and its answer."""
    w = lambda: word(rng)  # noqa: E731
    shape = rng.choice(["What was the {} {} figure reported for the {} {} in {}?",
                        "Which {} did the {} {} approve for the {} programme in {}?",
                        "How many {} {} were recorded at the {} site of {} during {}?",
                        "According to the {} report, who chaired the {} {} committee in {}?"])
    return shape.format(*(w() for _ in range(shape.count("{}") - 1)), rng.randint(1990, 2030)), f"{rng.randint(1, 99999):,} {w()}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A dataset of 12 sample pages and 28 synthetic ones; an evaluation set of 7 altered copies of
    each of 28 of them, 80 distinct synthetic pages, and questions: copies with small edits, and others."""
    root = tmp_path_factory.mktemp("decontam")
    held_in = pages(28, seed=3)
    rng = random.Random(7)
    turns = [[_question(rng) for _ in range(2)] for _ in held_in]
    dataset = cauldron_dataset(root / "dataset", [render(p) for p in held_in], turns)
    planted = [(i, k) for i in range(0, len(held_in), 1) if i < 12 or i % 2 == 0 for k in ALTERATIONS]
    distinct = pages(80, seed=11, samples=False)
    images = [altered(held_in[i], k) for i, k in planted] + [render(p) for p in distinct]
    def swap(i, new):  # the i-th word of the question changed
        return lambda q: " ".join(new if k == i else x for k, x in enumerate(q.split()))
    copies = {  # dataset (row, turn) -> an edited copy of its question
        (13, 0): lambda q: q.upper().replace("?", " ?"),  # case and punctuation
        (15, 1): swap(1, "exactly"),  # a word changed
        (17, 0): lambda q: q.replace(" ", " total ", 1),  # a word added
        (19, 1): swap(5, "overall"),  # a word changed in the middle
    }
    questions = [turns[r][t][0] for r, t in copies]
    qs = [f(q) for (r, t), f in zip(copies, copies.values()) for q in [turns[r][t][0]]]
    others = [_question(random.Random(100 + i))[0] for i in range(len(images) - len(qs))]
    eval_path = docvqa_set(root / "eval" / "test.parquet", images, qs + others, [[a] for a in ["x"] * len(images)])
    return {"root": root, "dataset": dataset, "held_in": held_in, "turns": turns, "planted": planted,
            "n_distinct": len(distinct), "eval": eval_path, "copies": list(copies), "questions": questions}


def _index(corpus, tmp_path, **cfg) -> EvalIndex:
    sets = [EvalSet(name="docvqa", path=corpus["eval"], split="test",
                    adapter={"kind": "qa", "image": "image", "question": "question", "answer": "answers"})]
    return EvalIndex(DecontamConfig(against=sets, **cfg), tmp_path / "cache")


def _dataset_hashes(corpus):
    t = pq.read_table(corpus["dataset"] / "data")
    rows = [(i, [im["bytes"] for im in r["images"]], [(x["user"], x["assistant"]) for x in r["texts"]])
            for i, r in enumerate(t.to_pylist())]
    return hash_rows(rows, DecontamConfig().text.ngram)


def test_planted_page_copies_are_found_and_distinct_pages_are_not(corpus, tmp_path):
    index = _index(corpus, tmp_path)
    hits = [h for h in index.check(_dataset_hashes(corpus)) if h.kind == "image"]
    held_in, planted = corpus["held_in"], corpus["planted"]
    found = {h.eval_id for h in hits if h.eval_id < len(planted) and _same(_name(held_in[h.row]), _name(held_in[planted[h.eval_id][0]]))}
    missed = [(_name(held_in[planted[e][0]]), planted[e][1]) for e in range(len(planted)) if e not in found]
    assert len(found) / len(planted) >= 0.99, f"{len(found)} of {len(planted)} planted copies found; missed {missed}"
    false = [(h.row, h.eval_id, h.distance) for h in hits
             if h.eval_id >= len(planted) or not _same(_name(held_in[h.row]), _name(held_in[planted[h.eval_id][0]]))]
    assert false == [], f"hits on distinct pages: {false}"
    assert len(planted) == 7 * 26 and index.sets[0].rows == len(planted) + corpus["n_distinct"]


def test_questions_copied_with_small_edits_are_found_by_the_text_check(corpus, tmp_path):
    index = _index(corpus, tmp_path, images={"enabled": False})
    hits = index.check(_dataset_hashes(corpus))
    question_hits = {(h.row, h.turn) for h in hits if h.kind == "question"}
    assert question_hits == set(corpus["copies"]), "each edited copy, and nothing else"
    assert all(h.overlap >= 0.7 for h in hits if h.kind == "question")
    assert {h.eval_id for h in hits if h.kind == "question"} == set(range(len(corpus["copies"])))


def test_hamming_index_finds_exactly_what_a_scan_finds(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    queries = stored[:300].copy()
    for i, q in enumerate(queries):  # 0..14 bits flipped
        for b in rng.choice(64, i % 15, replace=False):
            queries[i] = q = q ^ (np.uint64(1) << np.uint64(int(b)))
    queries = np.concatenate([queries, rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64)])
    index = HammingIndex.build(stored, ids=np.arange(len(stored)) + 1000)
    index.save(tmp_path / "mih")
    for idx in (index, HammingIndex.load(tmp_path / "mih")):
        for r in (0, 3, 11, 15):
            qi, ids, d = idx.near(queries, r)
            scan = {(i, int(j) + 1000) for i in range(len(queries))
                    for j in np.flatnonzero(np.bitwise_count(stored ^ queries[i]) <= r)}
            assert set(zip(qi.tolist(), ids.tolist())) == scan and len(scan) >= min(300, 20 * (r + 1))
            assert (d <= r).all()
    with pytest.raises(ValueError, match="over 15"):
        index.near(queries, 16)


def test_decontaminate_command_writes_a_clean_copy_report_and_card_and_reuses_hashes(corpus, tmp_path):
    out, cache = tmp_path / "clean", tmp_path / "cache"
    args = ["decontaminate", str(corpus["dataset"]), "--against", f"docvqa={corpus['eval']}", "--cache", str(cache)]
    res = docsynth(*args, "--out", str(out), "--json", "--strict")
    assert res.returncode == 3, res.stderr  # something matched, and --strict says so
    s = json.loads(res.stdout)
    d = s["decontamination"]
    n = len(corpus["held_in"])
    hit_rows = {json.loads(x)["sample"] for x in (out / "decontamination.jsonl").read_text().splitlines()
                if json.loads(x)["kind"] == "image"}
    assert d["rows_marked"] == len(hit_rows) == 26  # every planted page (scanned/annual's twins are both planted)
    assert s["rows_in"] == n and s["rows_out"] == n - d["rows_marked"]
    copied_rows = {r for r, _ in corpus["copies"]}
    assert d["turns_marked"] == len([r for r in copied_rows if r not in hit_rows])
    kept = pq.read_table(out / "data")
    assert kept.num_rows == s["rows_out"] and kept.schema.names[:2] == ["images", "texts"]
    remaining = {t["user"] for r in kept.column("texts").to_pylist() for t in r}
    assert not remaining & set(corpus["questions"])
    card = (out / "README.md").read_text()
    assert "## Decontamination" in card and "| docvqa |" in card
    assert s["hashes_made"] == 3  # the evaluation set and the dataset's two shards
    again = json.loads(docsynth(*args, "--json").stdout)  # no --out: check only, hashes read back
    assert again["hashes_made"] == 0 and again["hashes_reused"] == 3
    assert again["decontamination"]["rows_marked"] == d["rows_marked"]
    flagged = docsynth(*args, "--out", str(tmp_path / "flagged"), "--action", "flag", "--json")
    assert json.loads(flagged.stdout)["rows_out"] == n  # flag keeps every row, and reports them
    assert len((tmp_path / "flagged" / "decontamination.jsonl").read_text().splitlines()) >= d["rows_marked"]


def test_bad_evaluation_sets_stop_before_any_work(corpus, tmp_path):
    corrupt = tmp_path / "corrupt" / "test.parquet"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"PAR1 not really")
    wrong = tmp_path / "wrong" / "test.parquet"
    wrong.parent.mkdir()
    pq.write_table(__import__("pyarrow").table({"foo": [1], "bar": ["x"]}), wrong)
    for name, path, says in (("corrupt", corrupt, "not a readable parquet file"),
                             ("wrong", wrong, "not in the Cauldron schema"),
                             ("missing", tmp_path / "nope", "does not exist")):
        out = tmp_path / f"out-{name}"
        res = docsynth("decontaminate", str(corpus["dataset"]), "--against", f"{name}={path}", "--out", str(out),
                       "--cache", str(tmp_path / "cache"))
        assert res.returncode == 1 and f"evaluation set '{name}'" in res.stderr and says in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and not out.exists()
    with pytest.raises(DecontamError, match="evaluation set 'wrong'"):
        EvalIndex(DecontamConfig(against=[EvalSet(name="wrong", path=wrong)]), tmp_path / "c")


def test_an_empty_or_unreadable_evaluation_set_is_an_error_and_bad_images_are_named(corpus, tmp_path):
    import io

    from PIL import Image

    from docsynth.dataset.cauldron import SCHEMA, cauldron_row, rows_to_table

    def eval_set(name, rows):
        (tmp_path / name).mkdir()
        pq.write_table(rows_to_table(rows, SCHEMA), tmp_path / name / "test.parquet")
        return tmp_path / name

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buf, "PNG")
    empty = eval_set("empty", [])
    broken = eval_set("broken", [{"images": [{"bytes": b"notanimage", "path": None}], "texts": []}])
    some = eval_set("some", [cauldron_row([buf.getvalue()], ["What is shown?"], ["A page."], "x"),
                             {"images": [{"bytes": b"notanimage", "path": None}], "texts": []},
                             cauldron_row([b"\x89PNG broken"], ["Q?"], ["A."], "x")])
    for name, path, says in (("empty", empty, "has no rows"),
                             ("broken", broken, "has nothing to compare: none of its 1 images decodes")):
        out = tmp_path / f"out-{name}"
        res = docsynth("decontaminate", str(corpus["dataset"]), "--against", f"{name}={path}", "--out", str(out),
                       "--cache", str(tmp_path / "cache"))
        said = " ".join(res.stderr.split())
        assert res.returncode == 1 and f"evaluation set '{name}' ({path})" in said and says in said, res.stderr
        assert "Traceback" not in res.stderr and not out.exists()
    res = docsynth("decontaminate", str(corpus["dataset"]), "--against", f"some={some}", "--out",
                   str(tmp_path / "out-some"), "--cache", str(tmp_path / "cache"), "--json")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stderr.split())
    assert f"evaluation set 'some' ({some}): 2 images do not decode (rows 1, 2)" in said
    (info,) = json.loads(res.stdout)["decontamination"]["sets"]
    assert info["unreadable_images"] == 2 and info["unreadable_rows"] == [1, 2] and info["images"] == 1




def test_mix_leaves_out_the_rows_of_each_source_that_copy_its_evaluation_sets(corpus, tmp_path):
    import yaml

    from docsynth.mixing.mixer import run_mix
    from docsynth.config.mixture import load_mixture

    n = len(corpus["held_in"])
    spec = {"name": "clean-mix", "total": None, "shard_rows": 16,
            "decontaminate": {"against": [{"name": "docvqa", "path": str(corpus["eval"]),
                                           "adapter": {"kind": "qa", "answer": "answers"}}]},
            "sources": [{"name": "docs", "path": str(corpus["dataset"]), "repeat": 1},
                        {"name": "unchecked", "path": str(corpus["dataset"]), "repeat": 1,
                         "decontaminate": {"against": []}}]}
    spec.pop("total")
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(spec))
    m, _ = load_mixture(tmp_path / "mix.yaml")
    out = tmp_path / "mix"
    s = run_mix(m, out)
    docs, unchecked = s.sources
    assert docs.filtered == {"decontaminate": 26 + 4} and docs.realised == n - 30  # 26 pages, 4 copied questions
    assert unchecked.filtered == {} and unchecked.realised == n
    assert set(s.decontamination) == {"docs"} and s.decontamination["docs"]["rows_with_hits"] == 30
    report = [json.loads(x) for x in (out / "decontamination.jsonl").read_text().splitlines()]
    assert {r["sample"].split(":")[0] for r in report} == {"docs"} and len({r["sample"] for r in report}) == 30
    assert "## Decontamination" in (out / "README.md").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in (out / ".hashes").rglob("*.npz")}
    again = run_mix(m, out)
    assert again.sources[0].realised == docs.realised
    assert stamps and {p: p.stat().st_mtime_ns for p in (out / ".hashes").rglob("*.npz")} == stamps


def test_mix_leaves_out_rows_whose_image_an_earlier_row_or_source_has(corpus, tmp_path):
    import yaml

    from docsynth.config.mixture import load_mixture
    from docsynth.mixing.mixer import run_mix

    # a second source: altered copies of the first 10 pages of the corpus, then 6 distinct pages
    held_in = corpus["held_in"]
    copies = [altered(held_in[i], ALTERATIONS[i % 7]) for i in range(10)] + [render(p) for p in pages(6, 77, False)]
    second = cauldron_dataset(tmp_path / "second", copies, [[("What is shown on this page today?", "a page")]] * 16)
    spec = {"name": "dedup-mix", "dedup": {"images": True},
            "sources": [{"name": "first", "path": str(corpus["dataset"]), "repeat": 1},
                        {"name": "second", "path": str(second), "repeat": 1}]}
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(spec))
    m, _ = load_mixture(tmp_path / "mix.yaml")
    s = run_mix(m, tmp_path / "mix")
    first, later = s.sources
    # the first source keeps all but scanned_report's two pages (rows 7, 8: annual_report's rows
    # 0, 1 scanned); the second loses its 10 copies, each naming the first copy in the first source
    assert first.filtered == {"duplicate": 2} and later.filtered == {"duplicate": 10}
    assert s.duplicates == {"first": 2, "second": 10} and later.realised == 6
    lines = {x["sample"]: x["of"] for x in map(json.loads, (tmp_path / "mix" / "duplicates.jsonl").read_text().splitlines())}
    twin = {7: 0, 8: 1}
    assert lines == {"first:7": "first:0", "first:8": "first:1",
                     **{f"second:{i}": f"first:{twin.get(i, i)}" for i in range(10)}}
    assert "## Near-duplicates" in (tmp_path / "mix" / "README.md").read_text()
