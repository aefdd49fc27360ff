"""The mixer on many small real sources: shares, exact counts, determinism, bounded spill, every
kind of source layout and adapter, turn caps and splits, and every kind of bad source."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from docsynth.dataset.cauldron import SCHEMA
from docsynth.mixing.mixer import run_mix
from docsynth.mixing.shuffle import Spill
from docsynth.dataset.sources import SourceError, open_source
from docsynth.core.errors import DocsynthError
from docsynth.config.mixture import Mixture, SourceConfig, load_mixture
from docsynth.dataset.stats import dataset_stats, stats_markdown
from tests.conftest import shard_names
from tests.dataset.mixsources import cauldron_source, png, rows, users
from tests.cli import invoke


def mixed(out: Path) -> list[str]:
    return users(pq.read_table(out / "data"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_card_stats_are_the_output_s(out: Path) -> None:
    """The card's statistics (counted as rows are spilled) are those of the shards written."""
    written = stats_markdown(dataset_stats(out))
    assert written.strip() and written in (out / "README.md").read_text()


@pytest.fixture(params=["images apart", "images with rows"])
def spill_images(request, monkeypatch) -> str:
    """Both ways rows are spilled: image bytes written apart from the rows (how large images go),
    or copied with them (small ones); the sources here have small images."""
    monkeypatch.setattr("docsynth.mixing.spillfile.SPLIT_MIN_ROW_BYTES", 0 if request.param == "images apart" else 1 << 40)
    return request.param


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    """56 sources of 7..612 rows, in 1-3 shards each."""
    root = tmp_path_factory.mktemp("sources")
    for i in range(56):
        cauldron_source(root, f"src{i:02d}", 7 + (i * 37) % 606, shards=1 + i % 3, row_group=50)
    return root


def many_mixture(root: Path, total: int, seed: int = 0, **kw) -> Mixture:
    return Mixture.model_validate({"name": "many", "seed": seed, "total": total, **kw, "sources": [
        {"name": f"src{i:02d}", "path": str(root / f"src{i:02d}"), "weight": 1 + (i % 7) * 0.5} for i in range(56)]})


def test_56_sources_realise_their_weights_and_the_manifest_says_so(many, tmp_path, spill_images):
    m = many_mixture(many, total=40_000, shard_bytes=1_000_000)
    s = run_mix(m, tmp_path / "mix")
    got = Counter(u.split("/")[0] for u in mixed(tmp_path / "mix"))
    weights = {f"src{i:02d}": 1 + (i % 7) * 0.5 for i in range(56)}
    total_w = sum(weights.values())
    assert sum(got.values()) == 40_000 == s.rows
    for name, w in weights.items():
        assert abs(got[name] / 40_000 - w / total_w) < 0.01 * (w / total_w) + 1 / 40_000, name
    manifest = json.loads((tmp_path / "mix" / "mixture.json").read_text())
    assert manifest["seed"] == 0 and manifest["rows"] == 40_000 and len(manifest["sources"]) == 56
    for r in manifest["sources"]:
        assert r["realised"] == got[r["name"]] == r["requested"]
        assert abs(r["realised_share"] - r["requested_share"]) < 1e-9
        if r["requested"] > r["rows_available"]:  # exhausted, then repeated
            assert r["epochs"] > 1
    assert len(manifest["shards"]) > 1
    for sh in manifest["shards"]:
        f = tmp_path / "mix" / sh["path"]
        assert sha(f) == sh["sha256"] and pq.read_metadata(f).num_rows == sh["rows"]
    # Shares hold shard by shard too: the shuffle is global, not source after source.
    first = Counter(u.split("/")[0] for u in users(pq.read_table(tmp_path / "mix" / manifest["shards"][0]["path"])))
    assert len(first) == 56
    card = (tmp_path / "mix" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["dataset_info"]["splits"][0]["num_examples"] == 40_000 and "| src55 |" in card
    assert_card_stats_are_the_output_s(tmp_path / "mix")
    ds = datasets.load_dataset(str(tmp_path / "mix"), split="train")
    assert len(ds) == 40_000 and ds.features["images"] == datasets.List(datasets.Image())


def test_without_replacement_until_exhausted_then_by_repeat(tmp_path, spill_images):
    cauldron_source(tmp_path, "ten", 10)
    cauldron_source(tmp_path, "hundred", 100, shards=3)
    m = Mixture.model_validate({"sources": [
        {"name": "ten", "path": str(tmp_path / "ten"), "repeat": 2.5},
        {"name": "hundred", "path": str(tmp_path / "hundred"), "max_samples": 37}]})
    s = run_mix(m, tmp_path / "out")
    got = Counter(mixed(tmp_path / "out"))
    ten = {u: c for u, c in got.items() if u.startswith("ten/")}
    assert sum(ten.values()) == 25 and len(ten) == 10 and sorted(Counter(ten.values()).items()) == [(2, 5), (3, 5)]
    hundred = {u: c for u, c in got.items() if u.startswith("hundred/")}
    assert len(hundred) == 37 and set(hundred.values()) == {1}
    assert [r.realised for r in s.sources] == [25, 37] and s.rows == 62


def test_same_seed_same_bytes_other_seed_other_order(many, tmp_path, monkeypatch):
    a = run_mix(many_mixture(many, 3000, shard_rows=700), tmp_path / "a")
    b = run_mix(many_mixture(many, 3000, shard_rows=700), tmp_path / "b", spill_queue=20_000, spill_files=2)  # files closed and reopened
    assert [x["sha256"] for x in a.shards] == [x["sha256"] for x in b.shards] and len(a.shards) >= 2
    with monkeypatch.context() as mp:  # shards that outgrow the spill file they overwrite are written again
        mp.setattr(Spill, "output_room", lambda self, shard, groups: 1000)
        d = run_mix(many_mixture(many, 3000, shard_rows=700), tmp_path / "d")
    assert [x["sha256"] for x in d.shards] == [x["sha256"] for x in a.shards]
    shm = Path("/dev/shm")
    if shm.is_dir() and os.stat(shm).st_dev != os.stat(tmp_path).st_dev:  # a spill on another file system
        e = run_mix(many_mixture(many, 3000, shard_rows=700), tmp_path / "e", spill_dir=shm)
        assert [x["sha256"] for x in e.shards] == [x["sha256"] for x in a.shards]
        assert not list(shm.glob(f".docsynth-spill-{os.getpid()}*"))
    assert (tmp_path / "d" / "README.md").read_text() == (tmp_path / "a" / "README.md").read_text().replace(
        str(tmp_path / "a"), str(tmp_path / "d"))
    for split_min in (0, 1 << 40):  # image bytes spilled apart from the rows or with them: the same bytes out
        with monkeypatch.context() as mp:
            mp.setattr("docsynth.mixing.spillfile.SPLIT_MIN_ROW_BYTES", split_min)
            f = run_mix(many_mixture(many, 3000, shard_rows=700), tmp_path / f"f{split_min}")
        assert [x["sha256"] for x in f.shards] == [x["sha256"] for x in a.shards]
    c = run_mix(many_mixture(many, 3000, seed=1, shard_rows=700), tmp_path / "c")
    assert mixed(tmp_path / "c") != mixed(tmp_path / "a")
    assert Counter(u.split("/")[0] for u in mixed(tmp_path / "c")) == Counter(u.split("/")[0] for u in mixed(tmp_path / "a"))
    assert len(c.shards) == len(a.shards)


def test_shard_rows_and_a_rerun_replaces_the_old_shards(tmp_path):
    cauldron_source(tmp_path, "s", 90)
    m = Mixture.model_validate({"shard_rows": 20, "sources": [{"name": "s", "path": str(tmp_path / "s"), "repeat": 1}]})
    s = run_mix(m, tmp_path / "out")
    assert [x["rows"] for x in s.shards] == [18] * 5 and sorted(mixed(tmp_path / "out")) == sorted(f"s/{i}" for i in range(90))
    m.shard_rows = 50
    run_mix(m, tmp_path / "out")
    assert shard_names(tmp_path / "out" / "data") == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert not (tmp_path / "out" / ".spill").exists()


def test_source_layouts_save_to_disk_hub_configs_glob_and_single_file(tmp_path):
    feats = datasets.Features({"images": datasets.List(datasets.Image()), "texts": datasets.List(
        {"user": datasets.Value("string"), "assistant": datasets.Value("string"), "source": datasets.Value("string")})})
    datasets.Dataset.from_list(rows("saved", 12), features=feats).save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows("dd", 5), features=feats),
                          "test": datasets.Dataset.from_list(rows("ddtest", 3), features=feats)}).save_to_disk(str(tmp_path / "dd"))
    hub = tmp_path / "cauldron"
    for cfg, n in (("ai2d", 6), ("chartqa", 9)):
        (hub / cfg).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows(cfg, n), schema=SCHEMA), hub / cfg / "train-00000-of-00001.parquet")
    (hub / "README.md").write_text("---\n" + yaml.safe_dump({"configs": [
        {"config_name": c, "data_files": [{"split": "train", "path": f"{c}/train-*"}]} for c in ("ai2d", "chartqa")]}) + "---\n# c\n")
    cauldron_source(tmp_path, "globbed", 8, shards=2)
    m = Mixture.model_validate({"sources": [
        {"name": "saved", "path": str(tmp_path / "saved"), "repeat": 1},
        {"name": "dd", "path": str(tmp_path / "dd"), "repeat": 1},
        {"name": "ddtest", "path": str(tmp_path / "dd"), "split": "test", "repeat": 1},
        {"name": "chartqa", "path": str(hub), "config": "chartqa", "repeat": 1},
        {"name": "glob", "path": str(tmp_path / "globbed" / "data" / "train-*.parquet"), "repeat": 1},
        {"name": "file", "path": str(hub / "ai2d" / "train-00000-of-00001.parquet"), "max_samples": 2}]})
    s = run_mix(m, tmp_path / "out")
    got = Counter(u.split("/")[0] for u in mixed(tmp_path / "out"))
    assert got == {"saved": 12, "dd": 5, "ddtest": 3, "chartqa": 9, "globbed": 8, "ai2d": 2}
    assert {r.name: r.kind for r in s.sources} == {"saved": "save_to_disk", "dd": "save_to_disk", "ddtest": "save_to_disk",
                                                   "chartqa": "hub", "glob": "glob", "file": "file"}


def test_a_docsynth_dataset_is_a_source(tmp_path):
    """write.py's own output (data/ + a card with one config) mixes as it is."""
    d = tmp_path / "ds"
    (d / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows("doc", 4, turns=3), schema=SCHEMA), d / "data" / "train-00000-of-00001.parquet")
    (d / "README.md").write_text("---\n" + yaml.safe_dump({"configs": [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]}) + "---\n")
    run_mix(Mixture.model_validate({"sources": [{"name": "doc", "path": str(d), "repeat": 1}]}), tmp_path / "out")
    t = pq.read_table(tmp_path / "out" / "data")
    assert sorted(len(x) for x in t.column("texts").to_pylist()) == [3, 3, 3, 3]


def test_turn_caps_and_splits_count_the_pieces(tmp_path, spill_images):
    d = tmp_path / "long" / "data"
    d.mkdir(parents=True)
    table = pa.Table.from_pylist([*rows("five", 1, turns=5), *rows("one", 1, turns=1, first=1), *rows("zero", 1, turns=0, first=2)],
                                 schema=SCHEMA)
    pq.write_table(table, d / "train.parquet")
    base = {"name": "long", "path": str(tmp_path / "long"), "repeat": 1}
    s = run_mix(Mixture.model_validate({"sources": [{**base, "turns": {"split": 2}}]}), tmp_path / "split")
    texts = pq.read_table(tmp_path / "split" / "data").column("texts").to_pylist()
    pieces = sorted([t["user"] for t in x] for x in texts)
    assert pieces == [["five/0", "five/0#1"], ["five/0#2", "five/0#3"], ["five/0#4"], ["one/1"]]
    assert s.sources[0].rows_available == 4 and s.rows == 4
    images = pq.read_table(tmp_path / "split" / "data").column("images").to_pylist()
    assert all(len(im) == 1 and im[0]["bytes"] for im in images)  # every piece keeps its images
    run_mix(Mixture.model_validate({"sources": [{**base, "turns": {"max": 3, "split": 2}}]}), tmp_path / "capsplit")
    texts = pq.read_table(tmp_path / "capsplit" / "data").column("texts").to_pylist()
    assert sorted(len(x) for x in texts) == [1, 1, 2]
    run_mix(Mixture.model_validate({"sources": [{**base, "turns": {"max": 2}}]}), tmp_path / "cap")
    texts = pq.read_table(tmp_path / "cap" / "data").column("texts").to_pylist()
    assert sorted(len(x) for x in texts) == [0, 1, 2]


def test_adapters_qa_llava_and_messages(tmp_path, spill_images):
    image_struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pq.write_table(pa.table({
        "image": pa.array([{"bytes": png(1), "path": None}, {"bytes": png(2), "path": None}], image_struct),
        "question": ["What colour?", "How many?"],
        "answers": [["red", "blue", "blue"], ["3"]],
        "extra": [1, 2]}), tmp_path / "vqa.parquet")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png(5))
    pq.write_table(pa.table({"image": ["imgs/a.png"], "conversations": [[
        {"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A square."},
        {"from": "human", "value": "Its colour?"}, {"from": "gpt", "value": "Grey."}]]}), tmp_path / "llava.parquet")
    msgs = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Describe it."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A chart."}]}]
    pq.write_table(pa.table({"messages": [msgs], "images": pa.array([[{"bytes": png(7), "path": None}]], pa.list_(image_struct))}),
                   tmp_path / "chat.parquet")
    m = Mixture.model_validate({"sources": [
        {"name": "vqa", "path": str(tmp_path / "vqa.parquet"), "repeat": 1,
         "adapter": {"kind": "qa", "answer": "answers", "answers": "most_common"}},
        {"name": "llava", "path": str(tmp_path / "llava.parquet"), "repeat": 1, "adapter": {"kind": "llava"}},
        {"name": "chat", "path": str(tmp_path / "chat.parquet"), "repeat": 1, "adapter": {"kind": "messages"}}]})
    run_mix(m, tmp_path / "out")
    t = pq.read_table(tmp_path / "out" / "data").to_pylist()
    by_q = {r["texts"][0]["user"]: r for r in t}
    assert by_q["What colour?"]["texts"] == [{"user": "What colour?", "assistant": "blue", "source": "vqa"}]
    assert by_q["What colour?"]["images"][0]["bytes"] == png(1)
    assert [(x["user"], x["assistant"]) for x in by_q["What is shown?"]["texts"]] == [("What is shown?", "A square."), ("Its colour?", "Grey.")]
    assert by_q["What is shown?"]["images"][0]["bytes"] == png(5)
    assert by_q["Describe it."]["texts"][0]["assistant"] == "A chart." and by_q["Describe it."]["images"][0]["bytes"] == png(7)


def test_broken_images_are_skipped_and_counted_or_fail(tmp_path, spill_images):
    good = rows("b", 6)
    good[1]["images"][0]["bytes"] = b"not an image at all"
    good[3]["images"][0]["bytes"] = good[3]["images"][0]["bytes"][:-20]  # truncated PNG
    good[4]["images"][0]["bytes"] = b""
    (tmp_path / "b").mkdir()
    pq.write_table(pa.Table.from_pylist(good, schema=SCHEMA), tmp_path / "b" / "train.parquet")
    src = {"name": "b", "path": str(tmp_path / "b"), "repeat": 2}
    s = run_mix(Mixture.model_validate({"sources": [src]}), tmp_path / "out")
    assert sorted(set(mixed(tmp_path / "out"))) == ["b/0", "b/2", "b/5"] and s.rows == 6
    r = s.sources[0]
    assert r.broken_images == 6 and r.requested == 12 and r.realised == 6 and s.rejects == 6
    assert {e["row"] for e in r.broken_examples} == {1, 3, 4}
    assert any("truncated PNG" in e["reason"] for e in r.broken_examples)
    assert_card_stats_are_the_output_s(tmp_path / "out")  # rows left out are not counted, repeats are
    with pytest.raises(SourceError, match=r"source 'b': row 1 cannot be used: "):
        run_mix(Mixture.model_validate({"sources": [{**src, "broken_images": "fail"}]}), tmp_path / "fail")
    assert not list((tmp_path / "fail" / "data").glob("*.parquet"))
    s = run_mix(Mixture.model_validate({"sources": [{**src, "image_check": "none"}]}), tmp_path / "unchecked")
    assert s.rows == 12
    assert_card_stats_are_the_output_s(tmp_path / "unchecked")  # broken images kept, and counted alike


def test_every_bad_source_is_named_before_anything_is_written(tmp_path):
    cauldron_source(tmp_path, "good", 5)
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "train.parquet").write_bytes(b"PAR1 this is not parquet")
    pq.write_table(pa.table({"image": [png(1)], "question": ["q"], "answer": ["a"]}), tmp_path / "vqa.parquet")
    pq.write_table(pa.table({"images": [[{"bytes": png(1), "path": None}]], "texts": [[{"user": "q", "assistant": "a"}]]}),
                   tmp_path / "nosource.parquet")
    mixed_dir = tmp_path / "mixedschema"
    cauldron_source(tmp_path, "mixedschema", 4)
    pq.write_table(pa.table({"x": [1]}), mixed_dir / "data" / "train-zzz.parquet")
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "README.md").write_text("---\nconfigs:\n- config_name: a\n  data_files: a/*\n- config_name: b\n  data_files: b/*\n---\n")
    m = Mixture.model_validate({"sources": [
        {"name": "good", "path": str(tmp_path / "good"), "repeat": 1},
        {"name": "missing", "path": str(tmp_path / "nope"), "repeat": 1},
        {"name": "empty", "path": str(tmp_path / "empty"), "repeat": 1},
        {"name": "corrupt", "path": str(tmp_path / "corrupt"), "repeat": 1},
        {"name": "vqa", "path": str(tmp_path / "vqa.parquet"), "repeat": 1},
        {"name": "vqa-bad-adapter", "path": str(tmp_path / "vqa.parquet"), "repeat": 1, "adapter": {"kind": "qa", "answer": "answers"}},
        {"name": "nosource", "path": str(tmp_path / "nosource.parquet"), "repeat": 1},
        {"name": "mixedschema", "path": str(mixed_dir), "repeat": 1},
        {"name": "hub", "path": str(hub), "repeat": 1}]})
    with pytest.raises(SourceError) as e:
        run_mix(m, tmp_path / "out")
    msg = str(e.value)
    assert "8 of 9 sources cannot be used" in msg
    for want in ("source 'missing': ", "does not exist", "source 'empty': no parquet or arrow files",
                 "source 'corrupt': ", "is not a readable parquet file",
                 "source 'vqa' is not in the Cauldron schema: has no column 'images'", "adapter",
                 "source 'vqa-bad-adapter': the qa adapter's answer column 'answers' is not in the source",
                 "source 'nosource' is not in the Cauldron schema: column 'texts.source' is missing",
                 "source 'mixedschema': ", "has a different schema", "source 'hub': ", "has 2 configs; name one with `config:` (a, b)"):
        assert want in msg, want
    assert not (tmp_path / "out").exists()


def test_mixture_files_validate_with_key_paths(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("sources:\n- {name: a, path: x, weight: 1, repeat: 2}\n")
    with pytest.raises(DocsynthError, match="give exactly one of weight, repeat, max_samples"):
        load_mixture(f)
    f.write_text("sources:\n- {name: a, path: x, weight: 1}\n")
    with pytest.raises(DocsynthError, match="have a weight, so the mixture needs a total"):
        load_mixture(f)
    f.write_text("total: 5\nsources:\n- {name: a, path: x, weight: 1}\n- {name: a, path: y, weight: 1}\n")
    with pytest.raises(DocsynthError, match="source name 'a' is used twice"):
        load_mixture(f)
    f.write_text("total: 5\nshard_bytes: 64MB\nsources:\n- {name: a, path: sub/x, weight: 1, turns: {splt: 2}}\n")
    with pytest.raises(DocsynthError, match=r"sources.0.turns.splt: unknown key; did you mean 'sources.0.turns.split'"):
        load_mixture(f)
    f.write_text("total: 5\nshard_bytes: 64MB\nsources:\n- {name: a, path: sub/x, weight: 1}\n")
    m, _ = load_mixture(f)
    assert m.shard_bytes == 64_000_000 and m.sources[0].path == tmp_path / "sub" / "x"


def test_totals_that_cannot_be_met_are_errors(tmp_path):
    cauldron_source(tmp_path, "s", 10)
    with pytest.raises(DocsynthError, match="total is 5 but the sources' repeat and max_samples give 10 rows"):
        run_mix(Mixture.model_validate({"total": 5, "sources": [{"name": "s", "path": str(tmp_path / "s"), "repeat": 1}]}), tmp_path / "o")
    with pytest.raises(DocsynthError, match="leaving 0 for 1 weighted sources"):
        run_mix(Mixture.model_validate({"total": 10, "sources": [{"name": "s", "path": str(tmp_path / "s"), "repeat": 1},
                                                                 {"name": "w", "path": str(tmp_path / "s"), "weight": 1}]}), tmp_path / "o")


def test_cli_mix_json_and_exit_codes(tmp_path):
    cauldron_source(tmp_path, "a", 10)
    bad = rows("b", 3)
    bad[0]["images"][0]["bytes"] = b"junk"
    (tmp_path / "b").mkdir()
    pq.write_table(pa.Table.from_pylist(bad, schema=SCHEMA), tmp_path / "b" / "t.parquet")
    (tmp_path / "m.yaml").write_text("name: cli\ntotal: 20\nsources:\n- {name: a, path: a, weight: 1}\n- {name: b, path: b, weight: 1}\n")
    res = invoke("mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "out"),
                          "--json")
    assert res.returncode == 0, res.stderr  # finished, some rows left out: counted, not an error
    out = json.loads(res.stdout)
    assert out["rows"] < 20 and out["sources"][1]["broken_images"] > 0 and "source 'b': row 0 left out" in res.stderr
    res = invoke("mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o2"),
                          "--total", "12", "--strict")
    assert res.returncode == 3 and "realised" in res.stdout and "MB/s" in res.stdout  # --strict: rows left out
    res = invoke("mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o4"),
                          "--dry-run", "--json")
    plan = json.loads(res.stdout)
    assert res.returncode == 0 and plan["requested"] == 20 and [s["requested"] for s in plan["sources"]] == [10, 10]
    assert plan["shards"] == [] and not (tmp_path / "o4").exists()
    (tmp_path / "m.yaml").write_text("sources:\n- {name: a, path: a, wieght: 1}\n")
    res = invoke("mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "o3"))
    assert res.returncode == 2 and "did you mean 'sources.0.weight'" in res.stderr and "Traceback" not in res.stderr
    help_ = invoke("mix", "--help").stdout
    for word in ("weight", "repeat", "max_samples", "adapter", "mixture.json", "byte-identical", "--dry-run", "--spill-dir"):
        assert word in help_


def test_a_source_corrupt_past_its_footer_fails_naming_it_and_the_previous_mixture_stays(tmp_path):
    cauldron_source(tmp_path, "ok", 30)
    bad = cauldron_source(tmp_path, "bad", 40, row_group=10) / "data" / "train-00000-of-00001.parquet"
    m = Mixture.model_validate({"sources": [{"name": "ok", "path": str(tmp_path / "ok"), "repeat": 1},
                                            {"name": "bad", "path": str(tmp_path / "bad"), "repeat": 1}]})
    first = run_mix(m, tmp_path / "out")
    data = bytearray(bad.read_bytes())
    page = pq.read_metadata(bad).row_group(2).column(0).data_page_offset
    data[page:page + 40] = b"\xab" * 40  # the footer still reads; row group 2 does not
    bad.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"source 'bad': cannot read .*train-00000-of-00001.parquet"):
        run_mix(m, tmp_path / "out")
    assert [sha(tmp_path / "out" / s["path"]) for s in first.shards] == [s["sha256"] for s in first.shards]
    assert shard_names(tmp_path / "out" / "data") == ["train-00000-of-00001.parquet"]
    assert not (tmp_path / "out" / ".spill").exists()
    assert len(datasets.load_dataset(str(tmp_path / "out"), split="train")) == 70


def test_the_example_mixture_file_validates():
    m, _ = load_mixture(Path(__file__).resolve().parents[2] / "recipes" / "mixtures" / "docs.yaml")
    assert len(m.sources) >= 2 and any(s.adapter for s in m.sources) and m.total


@pytest.mark.timeout(120)  # a hasher left waiting for a shard that never ends would hang the run
def test_a_shard_that_fails_to_write_fails_the_run_and_the_previous_mixture_stays(tmp_path, monkeypatch):
    """A write failure in the middle of the third shard (a full disk, say): the error is raised
    (the hashers following the shards being written stop: no hang), no part or spill is left,
    and the mixture written before is untouched."""
    noise = np.random.default_rng(0)

    def big_png() -> bytes:  # about 12 KB: a shard of 18 rows is 3 row groups of 100 KB
        b = io.BytesIO()
        Image.fromarray(noise.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(b, "PNG")
        return b.getvalue()

    (tmp_path / "s").mkdir()
    pq.write_table(pa.Table.from_pylist([{**r, "images": [{"bytes": big_png(), "path": None}]} for r in rows("s", 90)],
                                        schema=SCHEMA), tmp_path / "s" / "train.parquet")
    m = Mixture.model_validate({"shard_rows": 20, "row_group_bytes": 100_000,
                                "sources": [{"name": "s", "path": str(tmp_path / "s"), "repeat": 1}]})
    first = run_mix(m, tmp_path / "out")
    assert [pq.read_metadata(tmp_path / "out" / x["path"]).num_row_groups for x in first.shards] == [3] * 5
    before = {p.name: sha(p) for p in (tmp_path / "out" / "data").iterdir()}
    calls = []
    real = pq.ParquetWriter.write_table

    def failing(self, *a, **k):
        calls.append(1)
        if len(calls) == 8:  # the second row group of the third shard
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", failing)
    with pytest.raises(OSError, match="No space left"):
        run_mix(m, tmp_path / "out")
    assert len(calls) == 8
    assert {p.name: sha(p) for p in (tmp_path / "out" / "data").iterdir()} == before
    assert not (tmp_path / "out" / ".spill").exists()


def test_a_row_group_bigger_than_a_batch_is_read_in_pieces(tmp_path):
    """Source.read gives a row group whole when it fits in batch_bytes, else in pieces of about
    batch_bytes: the same rows, numbered from the unit's start, either way."""
    cauldron_source(tmp_path, "big", 300, shards=2, row_group=150)  # two files, one row group each
    src = open_source(SourceConfig(name="big", path=tmp_path / "big", repeat=1))
    assert [u.rows for u in src.units] == [150, 150]
    whole = list(src.read(src.units, ["images", "texts"]))
    pieces = list(src.read(src.units, ["images", "texts"], batch_bytes=src.units[0].bytes // 7))
    assert [(s, b.num_rows) for s, b in whole] == [(0, 150), (150, 150)]
    assert len(pieces) >= 14
    starts, at = [], 0
    for s, b in pieces:
        starts.append(s)
        at += b.num_rows
    assert starts == list(np.cumsum([0] + [b.num_rows for _, b in pieces[:-1]])) and at == 300
    assert pa.Table.from_batches([b for _, b in pieces]).to_pylist() == pa.Table.from_batches([b for _, b in whole]).to_pylist()


@pytest.mark.slow
def test_a_kill_at_every_step_of_publishing_a_mixture_leaves_the_old_or_the_new_one(tmp_path):
    """As for write (tests/dataset/test_write.py): kill -9 before each rename and unlink under
    OUT while mixture B replaces mixture A; after each, load_dataset and docsynth stats see one
    of them whole."""
    import shutil
    import signal

    cauldron_source(tmp_path, "s", 60)
    out = tmp_path / "out"
    specs = {"A": {"shard_rows": 15, "seed": 1}, "B": {"shard_rows": 25, "seed": 2}}
    rows = {}
    for name in ("B", "A"):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({**specs[name], "sources": [
            {"name": "s", "path": str(tmp_path / "s"), "max_samples": 40 if name == "A" else 50}]}))
        res = invoke("mix", str(tmp_path / f"{name}.yaml"), "--out", str(out))
        assert res.returncode == 0, res.stderr
        rows[name] = sorted(datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / f"c{name}"))["texts"],
                            key=json.dumps)
    pristine = tmp_path / "pristine"
    shutil.copytree(out, pristine, symlinks=True)
    env = {**os.environ, "PYTHONPATH": f"{Path(__file__).parents[1] / 'faults'}:{Path(__file__).parents[2]}",
           "DOCSYNTH_KILL_ROOT": str(out)}
    seen = []
    for at in range(1, 40):
        shutil.rmtree(out)
        shutil.copytree(pristine, out, symlinks=True)
        res = subprocess.run([sys.executable, "-m", "docsynth.cli", "mix", str(tmp_path / "B.yaml"), "--out", str(out)],
                             env={**env, "DOCSYNTH_KILL_AT": str(at)}, capture_output=True, text=True, timeout=300)
        got = sorted(datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / f"c{at}"))["texts"], key=json.dumps)
        for kw in ({"data_dir": str(out)}, {"data_files": f"{out}/data/*.parquet"}):  # as a glob of the folder sees it
            assert sorted(datasets.load_dataset("parquet", split="train", cache_dir=str(tmp_path / f"c{at}"), columns=["texts"],
                                                **kw)["texts"], key=json.dumps) == got
        stats = invoke("stats", str(out), "--json")
        assert stats.returncode == 0 and json.loads(stats.stdout)["samples"] == len(got), stats.stderr
        seen.append(next(name for name, v in rows.items() if v == got))  # StopIteration: a mix of both
        if res.returncode == 0:
            break
        assert res.returncode == -signal.SIGKILL, res.stderr
    assert res.returncode == 0 and at > 5 and seen[-1] == "B" and seen == sorted(seen) and seen[0] == "A", seen


def test_rating_and_verified_filters_leave_out_rows_and_count_them(tmp_path, spill_images):
    """A docsynth dataset's quality columns (DATASET_SCHEMA) and a FineVision-shaped source's
    relevance_ratings: a row with one turn under the floor (or one that disagreed) is left out,
    a null rating passes, and the report counts what each filter left out."""
    from docsynth.dataset.cauldron import DATASET_SCHEMA, cauldron_row

    d = tmp_path / "rated" / "data"
    d.mkdir(parents=True)
    turns = [([5, 5], [True, True]), ([5, 2], [True, True]), ([None, None], [None, None]), ([4, 5], [True, False]),
             ([3, None], [None, True])]
    table = pa.Table.from_pylist([cauldron_row([png(i)], [f"rated/{i}", f"rated/{i}#1"], ["a", "b"], "rated",
                                               {"correctness": c, "relevance": [4, 4]}, v)
                                  for i, (c, v) in enumerate(turns)], schema=DATASET_SCHEMA)
    pq.write_table(table, d / "train.parquet")
    base = {"name": "rated", "path": str(tmp_path / "rated"), "repeat": 1}
    s = run_mix(Mixture.model_validate({"sources": [{**base, "min_rating": {"correctness": 4}, "verified": True}]}),
                tmp_path / "out")
    kept = users(pq.read_table(tmp_path / "out" / "data"))
    assert sorted(kept) == ["rated/0", "rated/2"]
    assert s.rows == 2 and s.sources[0].filtered == {"min_rating correctness": 2, "verified": 1}
    assert pq.read_schema(next((tmp_path / "out" / "data").glob("*.parquet"))).names == DATASET_SCHEMA.names
    split = run_mix(Mixture.model_validate({"sources": [{**base, "verified": True, "turns": {"split": 1}}]}),
                    tmp_path / "split")  # a row left out takes all its pieces with it
    assert split.rows == 8 and split.sources[0].filtered == {"verified": 2}

    plain = cauldron_source(tmp_path, "plain", 4)
    with pytest.raises(SourceError, match="source 'plain': its min_rating filter reads a column 'relevance_ratings'"):
        run_mix(Mixture.model_validate({"sources": [{"name": "plain", "path": str(plain), "repeat": 1,
                                                     "min_rating": {"relevance": 3}}]}), tmp_path / "bad")
    with pytest.raises(ValueError, match="min_rating"):
        Mixture.model_validate({"sources": [{**base, "min_rating": {"beauty": 3}}]})


def test_a_mixture_keeps_the_ratings_so_a_nanovlm_rating_filter_works_on_it(tmp_path):
    """No mix filter: the rated docsynth source's per-turn ratings, verified, checks and evidence
    come through into the mixture (cut with the turns when they are split, the row's *_min taken
    again), a plain Cauldron source gets nulls, and nanoVLM's *_min_rating filter (which skips a
    turn under the floor and passes a null rating) then drops the rows whose every turn is under it."""
    import datasets

    from docsynth.dataset.cauldron import DATASET_SCHEMA, cauldron_row

    d = tmp_path / "rated" / "data"
    d.mkdir(parents=True)
    ratings = [[5, 5], [2, 1], [4, 2], [None, 1]]
    pq.write_table(pa.Table.from_pylist(
        [cauldron_row([png(i)], [f"rated/{i}", f"rated/{i}#1"], ["a", "b"], "rated", {"relevance": r}, [True, False])
         for i, r in enumerate(ratings)], schema=DATASET_SCHEMA), d / "train.parquet")
    cauldron_source(tmp_path, "plain", 3)
    srcs = [{"name": "rated", "path": str(tmp_path / "rated"), "repeat": 1},
            {"name": "plain", "path": str(tmp_path / "plain"), "repeat": 1}]
    run_mix(Mixture.model_validate({"seed": 3, "sources": srcs}), tmp_path / "out")
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "c"))
    assert ds.column_names == DATASET_SCHEMA.names and len(ds) == 7
    by_user = {r["texts"][0]["user"]: r for r in ds}
    assert by_user["rated/1"]["relevance_ratings"] == [2, 1] and by_user["rated/1"]["relevance_min"] == 1
    assert by_user["rated/1"]["verified"] == [True, False] and by_user["rated/1"]["source"] == "rated"
    plain = next(r for r in ds if r["source"] == "plain")
    assert plain["relevance_ratings"] is None and plain["relevance_min"] is None  # the source has none

    def nanovlm_turns(item, **floors):  # nanoVLM data/datasets.py, BaseDataset._get_messages
        return [t for i, t in enumerate(item["texts"])
                if not any(item.get(f"{ax}_ratings") is not None and item[f"{ax}_ratings"][i] is not None
                           and item[f"{ax}_ratings"][i] < floor for ax, floor in floors.items())]
    kept = [r for r in ds if nanovlm_turns(r, relevance=3)]
    assert len(kept) == 6 and {r["texts"][0]["user"] for r in ds} - {r["texts"][0]["user"] for r in kept} == {"rated/1"}
    assert [t["user"] for t in nanovlm_turns(by_user["rated/2"], relevance=3)] == ["rated/2"]

    run_mix(Mixture.model_validate({"seed": 3, "sources": [{**srcs[0], "turns": {"split": 1}}]}), tmp_path / "split")
    pieces = {r["texts"][0]["user"]: r for r in pq.read_table(tmp_path / "split" / "data").to_pylist()}
    assert len(pieces) == 8 and pieces["rated/2#1"]["relevance_ratings"] == [2] and pieces["rated/2#1"]["relevance_min"] == 2
    assert pieces["rated/3"]["relevance_min"] is None and pieces["rated/3#1"]["verified"] == [False]
