"""Filter and write: candidates from a real ingest (scripted backend) to a Cauldron dataset that
datasets.load_dataset reads, with a card the Hub reads; cached, re-sharded, empty."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docsynth.executors.local import run_write
from docsynth.executors.local import run_generate
from docsynth.executors.local import run_ingest
from docsynth.core.errors import DocsynthError
from docsynth.config.recipe import Recipe, dump_recipe
from tests.conftest import ROOT, shard_names, text_pdf
from tests.generate.conftest import scripted_session
from tests.cli import invoke

FACTS = "The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros. Chair Ines Duarte spoke."


def answer(req) -> str:
    """Per request: a grounded pair, an unanswerable one, a code one, an invented one."""
    return json.dumps([
        {"question": "How large is the approved budget?", "answer": "4.2 million euros"},
        {"question": "Who is the treasurer of the board?", "answer": "This is not mentioned in the document."},
        {"question": "How would you compute the total?", "answer": "def total(x):\n    return sum(x)"},
        {"question": "When was the harbour founded?", "answer": "In 1850 by Lord Smith."},
    ])


def make_recipe(**over) -> Recipe:
    return Recipe.model_validate({"name": "harbour", "ingest": {"workers": 1, "ocr": {"mode": "never"}},
                                  "generate": {"guided_json": False, "max_pages_per_sample": 2}, **over})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    for i in range(3):
        text_pdf(d / f"doc{i}.pdf", [f"Minutes {i}. " + FACTS] * (i + 1))
    run = tmp_path_factory.mktemp("run")
    r = make_recipe(inputs={"paths": [str(d)], "docs_per_task": 2})
    run_ingest(r, ROOT, run)
    run_generate(r, ROOT, run, run, session=scripted_session(answer))
    return run


def test_the_dataset_loads_with_the_cauldron_features_and_the_rating_columns(run_dir, tmp_path):
    import datasets

    s = run_write(make_recipe(), run_dir, tmp_path / "ds")
    # doc0: 1 page -> 1 sample; doc1: 2 pages -> 1; doc2: 3 pages -> 2 (windows of 2)
    assert s.samples_in == 4 == s.samples_out and s.pairs_in == 16 and s.pairs_out == 4
    assert s.dropped == {"code": 4, "grounded": 4, "unanswerable": 4}
    ds = datasets.load_dataset(str(tmp_path / "ds"), split="train")
    assert ds.features == datasets.Features({
        "images": datasets.List(datasets.Image()),
        "texts": datasets.List({"user": datasets.Value("string"), "assistant": datasets.Value("string"),
                                "source": datasets.Value("string")}),
        "source": datasets.Value("string"),
        **{f"{axis}_{k}": t for axis in ("relevance", "formatting", "visual_dependency", "image_correspondence",
                                         "correctness")
           for k, t in (("ratings", datasets.List(datasets.Value("int64"))), ("min", datasets.Value("int64")))},
        "verified": datasets.List(datasets.Value("bool")),
        "checks": datasets.List({c: datasets.Value("bool") for c in ("evidence", "type", "choice", "vote", "round_trip")}),
        "evidence": datasets.List({"page": datasets.Value("int32"), "start": datasets.Value("int32"),
                                   "end": datasets.Value("int32"), "kind": datasets.Value("string"),
                                   "key": datasets.Value("string"), "text": datasets.Value("string")})})
    assert len(ds) == 4
    # No verify stage ran: one null per turn, and null minimums (nanoVLM skips a null rating)
    assert ds[0]["relevance_ratings"] == [None] * len(ds[0]["texts"]) and ds[0]["relevance_min"] is None
    assert ds[0]["verified"] == [None] * len(ds[0]["texts"])
    # model-first pairs without a verify stage: no evidence, no check ran
    assert ds[0]["evidence"] == [None] * len(ds[0]["texts"])
    assert ds[0]["checks"] == [dict.fromkeys(("evidence", "type", "choice", "vote", "round_trip"))] * len(ds[0]["texts"])
    row = ds[0]
    assert row["images"][0].size[0] > 500 and row["images"][0].mode in ("RGB", "L")  # decoded PIL images
    assert row["texts"] == [{"user": "How large is the approved budget?", "assistant": "4.2 million euros",
                             "source": row["texts"][0]["source"]}]
    assert row["source"] == row["texts"][0]["source"] and row["source"].startswith("docsynth:")
    assert row["texts"][0]["source"].startswith("docsynth:harbour doc:") and "template:" in row["texts"][0]["source"]
    assert sorted(len(r["images"]) for r in ds) == [1, 1, 2, 2]


def test_the_card_has_the_hub_header_and_how_it_was_made(run_dir, tmp_path):
    run_write(make_recipe(write={"license": "cc-by-4.0"}), run_dir, tmp_path / "ds")
    card = (tmp_path / "ds" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "cc-by-4.0" and header["size_categories"] == ["n<1K"]
    [config] = header["configs"]  # the live version's shards, named by the card (docsynth.dataset.versions)
    assert config["config_name"] == "default" and re.fullmatch(r"data/train-\*-[0-9a-f]{8}\.parquet", config["data_files"][0]["path"])
    assert sorted(str(p.relative_to(tmp_path / "ds")) for p in (tmp_path / "ds").glob(config["data_files"][0]["path"])) == [
        "data/" + p.name for p in sorted((tmp_path / "ds" / "data").iterdir()) if not p.name.startswith(".")]
    assert header["dataset_info"]["splits"][0]["num_examples"] == 4
    features = {f["name"]: f for f in header["dataset_info"]["features"]}
    assert list(features)[:3] == ["images", "texts", "source"] and len(features) == 3 + 5 * 2 + 3  # verified, checks, evidence
    assert features["relevance_ratings"] == {"name": "relevance_ratings", "list": "int64"}
    assert features["correctness_min"] == {"name": "correctness_min", "dtype": "int64"}
    assert features["verified"] == {"name": "verified", "list": "bool"}
    assert "How correctness is stored" in card and "`correctness_ratings`" in card
    for words in ("## How it was made", "| QA pairs | 16 | 4 |", "code 4, grounded 4, unanswerable 4", "## Examples",
                  "**A:** 4.2 million euros", "## Recipe", "name: harbour",
                  "## Statistics", "4 samples, 6 images, 4 QA pairs.", "| docsynth:harbour | 4 | 100.00% |",
                  "answer length (characters): mean 17.0", "images per sample: 1: 2, 2: 2"):
        assert words in card


def test_the_card_says_how_the_data_was_made_and_passes_the_hubs_metadata_validation(run_dir, tmp_path):
    from huggingface_hub import DatasetCard

    from tests.hubserver import Hub

    run_write(make_recipe(write={"license": "cc-by-4.0"}), run_dir, tmp_path / "ds")
    text = (tmp_path / "ds" / "README.md").read_text()
    card = DatasetCard(text, ignore_metadata_errors=False)
    assert card.data.annotations_creators == ["machine-generated"] and card.data.source_datasets == ["original"]
    assert card.data.language_creators == ["machine-generated"] and card.data.license == "cc-by-4.0"
    for words in ("## Generator", "licence", "## Limitations", "86 % right answer-first", "No verifier checked"):
        assert words in text, words
    with Hub("t") as hub:  # huggingface_hub's own validate(), against the stand-in Hub's copy of the rules
        code = ("import sys; from huggingface_hub import DatasetCard; "
                "DatasetCard(open(sys.argv[1]).read()).validate(); print('valid')")
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_TELEMETRY": "1"}
        ok = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ds" / "README.md")], env=env,
                            capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr[-2000:]
        bad = tmp_path / "bad.md"
        bad.write_text(text.replace("machine-generated", "robot-made", 1))
        refused = subprocess.run([sys.executable, "-c", code, str(bad)], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode != 0 and "robot-made" in refused.stderr


def test_every_drop_is_recorded_with_its_reason(run_dir, tmp_path):
    run_write(make_recipe(), run_dir, tmp_path / "ds")
    rej = [json.loads(x) for x in (run_dir / "filter-rejects.jsonl").read_text().splitlines()]
    assert len(rej) == 12 and {r["reason"].split(":")[0] for r in rej} == {"code", "grounded", "unanswerable"}
    assert all(r["question"] and r["sample_id"] and r["source"].endswith(".pdf") for r in rej)


def test_unchanged_inputs_reuse_the_dataset_and_changed_filters_rewrite_it(run_dir, tmp_path):
    out = tmp_path / "ds"
    first = run_write(make_recipe(), run_dir, out)
    candidates = {p: p.read_bytes() for p in (run_dir / "candidates").iterdir()}
    again = run_write(make_recipe(), run_dir, out)
    assert again.reused and not first.reused and again.shards == first.shards
    looser = run_write(make_recipe(filters=["code", "unanswerable"]), run_dir, out)
    assert not looser.reused and looser.pairs_out == 8 and looser.dropped == {"code": 4, "unanswerable": 4}
    assert {p: p.read_bytes() for p in (run_dir / "candidates").iterdir()} == candidates  # generation untouched


def test_shards_are_cut_by_rows_and_renamed_when_their_count_changes(run_dir, tmp_path):
    import datasets

    out = tmp_path / "ds"
    run_write(make_recipe(write={"shard_rows": 1}), run_dir, out)
    assert shard_names(out / "data") == [f"train-0000{i}-of-00004.parquet" for i in range(4)]
    run_write(make_recipe(write={"shard_rows": 3}), run_dir, out)
    assert shard_names(out / "data") == ["train-00000-of-00002.parquet",
                                                               "train-00001-of-00002.parquet"]
    assert len(datasets.load_dataset(str(out), split="train")) == 4


def test_nothing_left_after_filtering_is_a_clear_error_with_the_reasons_kept(run_dir, tmp_path):
    from docsynth.core.errors import DocsynthError

    with pytest.raises(DocsynthError, match=r"no sample is left after filtering \(4 in; .*'length': 16"):
        run_write(make_recipe(filters=[{"name": "length", "max_answer_chars": 2}]), run_dir, tmp_path / "ds")
    rej = (run_dir / "filter-rejects.jsonl").read_text().splitlines()
    assert len(rej) == 16 + 4 and not list((tmp_path / "ds" / "data").glob("train-*"))


def test_a_full_disk_mid_write_leaves_the_previous_dataset_whole(run_dir, tmp_path, monkeypatch):
    import errno

    import datasets

    from docsynth.dataset.shards import RowGroupFile

    out = tmp_path / "ds"
    run_write(make_recipe(write={"shard_rows": 1}), run_dir, out)
    before = {p.name: p.read_bytes() for p in (out / "data").iterdir() if p.name.startswith("train-")}
    real, calls = RowGroupFile._flush, {"n": 0}

    def disk_full_on_the_second_shard(self):  # the dataset's shards are written here (the parts in workers)
        calls["n"] += 1
        if calls["n"] == 2:
            self.tmp.write_bytes(b"PAR1 half a shard")  # some bytes reach the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self)

    monkeypatch.setattr(RowGroupFile, "_flush", disk_full_on_the_second_shard)
    with pytest.raises(OSError, match="No space left"):
        run_write(make_recipe(filters=["code"], write={"shard_rows": 1}), run_dir, out)
    monkeypatch.setattr(RowGroupFile, "_flush", real)
    assert calls["n"] == 2
    assert {p.name: p.read_bytes() for p in (out / "data").iterdir() if p.name.startswith("train-")} == before
    assert not list((out / "data").glob(".*.tmp"))  # the half shard was removed
    assert len(datasets.load_dataset(str(out), split="train")) == 4  # the old dataset still loads whole
    again = run_write(make_recipe(filters=["code"], write={"shard_rows": 1}), run_dir, out)
    assert not again.reused and again.pairs_out == 12  # only code dropped now
    assert shard_names(out / "data") == [f"train-0000{i}-of-00004.parquet" for i in range(4)]


def test_a_candidate_shard_changed_after_generate_is_named_then_redone(run_dir, tmp_path):
    """Bytes flipped inside a candidate shard (its footer still reads) never reach a dataset:
    write names the file, and generate's resume redoes that task, back to the same dataset."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    reference = run_write(make_recipe(), run, tmp_path / "ref")
    shard = run / "candidates" / "task-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3:len(data) // 3 + 8] = b"\x00" * 8
    shard.write_bytes(bytes(data))
    with pytest.raises(DocsynthError, match=r"candidates/task-00001.parquet does not hold the bytes its task wrote"):
        run_write(make_recipe(), run, tmp_path / "ds")
    again = run_generate(make_recipe(), ROOT, run, run, session=scripted_session(answer))
    assert (again.tasks, again.tasks_skipped) == (2, 1)  # the changed shard's task, and only it, redone
    s = run_write(make_recipe(), run, tmp_path / "ds")
    assert (s.samples_out, s.pairs_out) == (reference.samples_out, reference.pairs_out)
    assert _rows(tmp_path / "ds", tmp_path / "c1") == _rows(tmp_path / "ref", tmp_path / "c2")


@pytest.mark.slow
def test_a_kill_at_every_step_of_publishing_leaves_the_old_or_the_new_dataset(run_dir, tmp_path):
    """kill -9 before each rename and unlink under OUT while version B replaces version A: after
    each, load_dataset and docsynth stats see A whole or B whole, never a mix or a temporary."""
    out = tmp_path / "ds"
    old, new = make_recipe(write={"shard_rows": 1}), make_recipe(filters=["code"], write={"shard_rows": 3})
    (tmp_path / "new.yaml").write_text(dump_recipe(new))
    versions = {}
    for name, r in (("B", new), ("A", old)):  # each written once whole, to know its rows
        run_write(r, run_dir, out)
        versions[name] = _rows(out, tmp_path / f"cache-{name}")
    assert versions["A"] != versions["B"]
    env = {**os.environ, "PYTHONPATH": f"{Path(__file__).parents[1] / 'faults'}:{ROOT}", "DOCSYNTH_KILL_ROOT": str(out)}
    pristine = tmp_path / "A"
    shutil.copytree(out, pristine, symlinks=True)  # A, as its write left it: each try starts from exactly this
    seen = []
    for at in range(1, 40):
        shutil.rmtree(out)
        shutil.copytree(pristine, out, symlinks=True)
        res = subprocess.run([sys.executable, "-m", "docsynth.cli", "write", str(run_dir), "--out", str(out), "--recipe",
                              str(tmp_path / "new.yaml"), "--json"], env={**env, "DOCSYNTH_KILL_AT": str(at)},
                             capture_output=True, text=True, timeout=300)
        rows = _rows(out, tmp_path / f"cache-{at}")
        assert _globbed(out, tmp_path / f"cache-{at}") == (rows, rows)  # data_dir and data/*.parquet agree
        stats = invoke("stats", str(out), "--json")
        assert stats.returncode == 0, stats.stderr
        figures = json.loads(stats.stdout)
        assert (figures["samples"], figures["pairs"]) == (len(rows), sum(len(json.loads(r)) for r in rows))
        seen.append(next(name for name, v in versions.items() if v == rows))  # StopIteration: a mix
        if res.returncode == 0:
            break
        assert res.returncode == -signal.SIGKILL, res.stderr
    # parts written (2), renamed to B's names (2), B's card, the swap with data/, A's files removed
    # (5), the marker: a kill before each, then a whole run
    assert res.returncode == 0 and at == 13 and seen == ["A"] * 6 + ["B"] * 7
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".docsynth-write.json", ".docsynth.lock"]
    # a kill while A's files are being removed leaves them; the next write removes them
    shutil.rmtree(out)
    shutil.copytree(pristine, out, symlinks=True)
    cmd = [sys.executable, "-m", "docsynth.cli", "write", str(run_dir), "--out", str(out), "--recipe", str(tmp_path / "new.yaml")]
    assert subprocess.run(cmd, env={**env, "DOCSYNTH_KILL_AT": "9"}, timeout=300).returncode == -signal.SIGKILL
    assert (out / ".data-next").is_dir()
    assert subprocess.run(cmd, timeout=300, capture_output=True).returncode == 0
    assert not (out / ".data-next").exists() and _rows(out, tmp_path / "cache-end") == versions["B"]


def test_a_dataset_of_the_old_layout_is_rewritten_into_the_new_one(run_dir, tmp_path):
    """A dataset written before the swap (data/ holding train-VVVVVVVV-XXXXX-of-NNNNN shards,
    README.md a file naming them) is rewritten into the new layout: README.md becomes the link to
    data/.README.md, nothing of the old is left, and every way of reading gives the new rows."""
    out = tmp_path / "ds"
    run_write(make_recipe(filters=["code"]), run_dir, tmp_path / "b")
    want = _rows(tmp_path / "b", tmp_path / "cache-b")
    run_write(make_recipe(), run_dir, out)
    card = (out / "README.md").read_text().replace("path: data/train-*-", "path: data/train-").replace(".parquet\n", "-*\n")
    (out / "README.md").unlink()
    (out / "data" / ".README.md").unlink()
    for f in (out / "data").iterdir():  # train-00000-of-00002-VVVVVVVV.parquet -> train-VVVVVVVV-00000-of-00002.parquet
        f.rename(f.with_name(re.sub(r"train-(\d{5}-of-\d{5})-([0-9a-f]{8})\.parquet", r"train-\2-\1.parquet", f.name)))
    (out / "README.md").write_text(card)
    old = _rows(out, tmp_path / "cache-old")
    assert old and old != want  # the old layout, read through its card
    run_write(make_recipe(filters=["code"]), run_dir, out)
    assert os.readlink(out / "README.md") == "data/.README.md" and not (out / "data").is_symlink()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".docsynth-write.json", ".docsynth.lock"]
    assert _rows(out, tmp_path / "cache-new") == want
    assert _globbed(out, tmp_path / "cache-new") == (want, want)
    from docsynth.dataset.versions import live_shards

    walked = sorted(p for p in out.glob("**/*.parquet") if not any(x.startswith(".") for x in p.relative_to(out).parts))
    assert walked == live_shards(out)  # as hf upload or find walks the folder: the live shards, and only those
    (tmp_path / "theirs" / "data").mkdir(parents=True)  # a data/ folder docsynth did not write is left alone
    (tmp_path / "theirs" / "data" / "notes.txt").write_text("mine")
    with pytest.raises(DocsynthError, match=r"holds files docsynth did not write \(notes.txt\)"):
        run_write(make_recipe(), run_dir, tmp_path / "theirs")
    assert (tmp_path / "theirs" / "data" / "notes.txt").read_text() == "mine"


def test_without_a_swap_a_kill_between_the_two_renames_is_mended_at_the_next_start(run_dir, tmp_path, monkeypatch):
    """Where the filesystem cannot swap two folders (NFS), the switch is two renames; a kill
    between them leaves no data/ (an error for a reader, never a mix), and the next write puts
    the old version back before it starts."""
    import docsynth.dataset.versions as versions

    out = tmp_path / "ds"
    run_write(make_recipe(), run_dir, out)
    a = _rows(out, tmp_path / "cache-a")
    monkeypatch.setattr(versions, "exchange", lambda x, y: False)
    run_write(make_recipe(filters=["code"]), run_dir, out)  # the two renames, whole
    b = _rows(out, tmp_path / "cache-b")
    assert a != b and not (out / ".data-old").exists() and not (out / ".data-next").exists()
    real = os.rename

    def killed_after_the_first(src, dst):
        real(src, dst)
        if str(dst).endswith(".data-old"):
            raise KeyboardInterrupt  # as a kill would stop it here
    monkeypatch.setattr(versions.os, "rename", killed_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        run_write(make_recipe(filters=["code"], write={"shard_rows": 1}), run_dir, out)
    assert not (out / "data").exists() and (out / ".data-old").is_dir()
    monkeypatch.setattr(versions.os, "rename", real)
    from docsynth.dataset.versions import begin

    begin(out)  # the next start
    assert _rows(out, tmp_path / "cache-c") == b


def _rows(out: Path, cache: Path) -> list:
    import datasets

    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(cache))
    return sorted(json.dumps(r, sort_keys=True) for r in ds.select_columns("texts")["texts"])


def _globbed(out: Path, cache: Path) -> tuple[list, list]:
    """The rows as the parquet builder gives them from data_dir=OUT, and from a glob of OUT/data."""
    import datasets

    found = []
    for kw in ({"data_dir": str(out)}, {"data_files": f"{out}/data/*.parquet"}):
        ds = datasets.load_dataset("parquet", split="train", cache_dir=str(cache / "parquet"), columns=["texts"], **kw)
        found.append(sorted(json.dumps(r, sort_keys=True) for r in ds["texts"]))
    return found[0], found[1]


def test_the_finevision_view_concatenates_with_a_finevision_dataset(run_dir, tmp_path):
    """FineVision's shape (images, texts of user/assistant, a top-level source, per-turn ratings
    and their minimum), made here as the Hub's loader gives it, and a docsynth dataset exported
    in the finevision view: datasets.concatenate_datasets takes both with no cast; the docsynth
    rows keep their ratings, and FineVision's rows get nulls in the columns only docsynth has."""
    import io

    import datasets
    from PIL import Image

    run_write(make_recipe(), run_dir, tmp_path / "ds")
    res = invoke("export", str(tmp_path / "ds"), "--format", "finevision",
                          "--out", str(tmp_path / "fv"), "--json")
    assert res.returncode == 0, res.stderr
    ours = datasets.load_dataset(str(tmp_path / "fv"), split="train", cache_dir=str(tmp_path / "c1"))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG")
    axes = ("relevance", "visual_dependency", "image_correspondence", "formatting")
    features = datasets.Features({
        "images": datasets.List(datasets.Image()),
        "texts": datasets.List({"user": datasets.Value("string"), "assistant": datasets.Value("string")}),
        "source": datasets.Value("string"),
        **{f"{a}_ratings": datasets.List(datasets.Value("int64")) for a in axes},
        **{f"{a}_min": datasets.Value("int64") for a in axes}})
    theirs = datasets.Dataset.from_list([{
        "images": [{"bytes": buf.getvalue(), "path": None}], "texts": [{"user": "What colour?", "assistant": "White."}],
        "source": "chartqa", **{f"{a}_ratings": [4] for a in axes}, **{f"{a}_min": 4 for a in axes}}], features=features)
    both = datasets.concatenate_datasets([ours, theirs])
    assert len(both) == len(ours) + 1 and both[-1]["source"] == "chartqa" and both[-1]["verified"] is None
    assert both[0]["texts"][0].keys() == {"user", "assistant"} and both[0]["source"].startswith("docsynth:")
    assert both[0]["relevance_ratings"] == [None] * len(both[0]["texts"]) and both[-1]["relevance_min"] == 4
