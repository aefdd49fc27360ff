"""`docsynth export --format messages`: the messages view that TRL's VLM SFT and chat templates
take, read back with `datasets.load_dataset`, the quality columns kept, and the same messages
MixtureDataset(output="messages") gives."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docsynth.core.errors import DocsynthError
from docsynth.dataset.cauldron import DATASET_SCHEMA, cauldron_row
from docsynth.dataset.export import export
from tests.dataset.mixsources import png
from tests.cli import invoke


def make(d, n: int = 5):
    (d / "data").mkdir(parents=True)
    rows = [cauldron_row([png(i), png(i + 100)] if i % 2 else [png(i)], [f"Q{i}a?", f"Q{i}b?"], [f"A{i}a", f"A{i}b"],
                         f"docsynth:{i}", ratings={"relevance": [5, i % 5 + 1]}, verified=[True, None]) for i in range(n)]
    pq.write_table(pa.Table.from_pylist(rows[:3], schema=DATASET_SCHEMA), d / "data" / "train-00000-of-00002.parquet",
                   row_group_size=2)
    pq.write_table(pa.Table.from_pylist(rows[3:], schema=DATASET_SCHEMA), d / "data" / "train-00001-of-00002.parquet")
    return d


def test_the_messages_view_loads_with_datasets_and_keeps_the_quality_columns(tmp_path):
    src = make(tmp_path / "ds")
    s = export(src, tmp_path / "msgs")
    assert s.rows == 5 and len(s.shards) == 2
    ds = datasets.load_dataset(str(tmp_path / "msgs"), split="train")
    assert len(ds) == 5 and set(ds.column_names) >= {"images", "messages", "source", "relevance_ratings", "verified"}
    row = ds[1]
    assert len(row["images"]) == 2 and row["images"][0].size == (8, 8)  # decoded by datasets: PIL images
    roles = [m["role"] for m in row["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    first = row["messages"][0]["content"]
    assert [p["type"] for p in first] == ["image", "image", "text"] and first[2]["text"] == "Q1a?"
    assert [m["content"][0]["text"] for m in row["messages"] if m["role"] == "assistant"] == ["A1a", "A1b"]
    assert row["messages"][2]["content"] == [{"type": "text", "text": "Q1b?"}]
    assert row["source"] == "docsynth:1" and row["relevance_ratings"] == [5, 2] and row["verified"] == [True, None]


def test_the_loader_gives_the_same_messages(tmp_path):
    from docsynth.loader import MixtureDataset

    src = make(tmp_path / "ds")
    export(src, tmp_path / "msgs")
    exported = {r["messages"][0]["content"][-1]["text"]: [
        {"role": m["role"], "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
        for m in r["messages"]] for r in pq.read_table(tmp_path / "msgs" / "data").to_pylist()}
    loaded = list(MixtureDataset(src, output="messages", decode_images=False))
    assert len(loaded) == 5
    for r in loaded:
        assert r["messages"] == exported[r["messages"][0]["content"][-1]["text"]]


def test_export_errors_and_the_cli(tmp_path):
    src = make(tmp_path / "ds")
    with pytest.raises(DocsynthError, match="no format 'llava'"):
        export(src, tmp_path / "x", "llava")
    with pytest.raises(DocsynthError, match="inside the dataset"):
        export(src, src / "msgs")
    with pytest.raises(DocsynthError, match="holds no dataset shards"):
        export(tmp_path / "nothing", tmp_path / "y")
    res = invoke("export", str(src), "--out", str(tmp_path / "cli"),
                          "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == 5 and (tmp_path / "cli" / "README.md").exists()


def test_mix_writes_the_messages_view_directly(tmp_path):
    from docsynth.config.mixture import Mixture
    from docsynth.dataset.cauldron import dataset_shards
    from docsynth.mixing.mixer import run_mix
    from tests.dataset.mixsources import cauldron_source

    cauldron_source(tmp_path, "a", 6)
    cauldron_source(tmp_path, "b", 4)
    m = {"seed": 1, "sources": [{"name": "a", "path": str(tmp_path / "a"), "repeat": 1},
                                {"name": "b", "path": str(tmp_path / "b"), "repeat": 1}]}
    run_mix(Mixture.model_validate({**m, "format": "messages"}), tmp_path / "msgs")
    run_mix(Mixture.model_validate(m), tmp_path / "cauldron")
    ds = datasets.load_dataset(str(tmp_path / "msgs"), split="train")
    # the quality columns come along, null here: these sources have none
    assert len(ds) == 10 and ds.column_names[:4] == ["images", "messages", "source", "relevance_ratings"]
    assert set(ds["source"]) == {"a", "b"} and set(ds["relevance_min"]) == {None}
    # The same rows in the same order as the Cauldron mixture of the same seed, in the other view.
    cauldron = pq.read_table(tmp_path / "cauldron" / "data").column("texts").to_pylist()
    assert [r["messages"][0]["content"][-1]["text"] for r in ds] == [t[0]["user"] for t in cauldron]
    assert dataset_shards(tmp_path / "msgs", messages=True)  # push takes it
    with pytest.raises(DocsynthError, match="has no column 'texts'"):
        dataset_shards(tmp_path / "msgs")  # the Cauldron readers (stats, the loader) say what it is not


def _bad_rows(d):
    """A dataset of 5 rows: 1 has a broken image, 2 null texts, 3 null images (docsynth.dataset.rowcheck)."""
    d.mkdir(parents=True)
    good = [cauldron_row([png(i)], [f"Q{i}?"], [f"A{i}"], "s", ratings={}, verified=None) for i in range(4)]
    broken = dict(good[1], images=[{"bytes": b"notanimage", "path": None}])
    rows = [good[0], broken, dict(good[2], texts=None), dict(good[3], images=None),
            cauldron_row([png(9)], ["Q9?"], ["A9"], "s", ratings={}, verified=None)]
    pq.write_table(pa.Table.from_pylist(rows, schema=DATASET_SCHEMA), d / "train-00000-of-00001.parquet")


def test_every_reader_names_the_rows_a_loader_cannot_use(tmp_path):
    """The rows export leaves out, told the same way by the other readers: stats counts and names
    them, preview shows why for each, push refuses the dataset before contacting the Hub, the
    mixer leaves them out and counts them, and the training loader stops at them with an error
    naming the shard and row."""

    _bad_rows(tmp_path / "bad" / "data")
    bad = str(tmp_path / "bad")

    def cli(*args, **env):
        return invoke(*args, env=env)
    res = cli("stats", bad, "--json")
    s = json.loads(res.stdout)
    assert res.returncode == 0 and s["samples"] == 5 and s["unusable_rows"] == 3
    assert [x.split(": ")[0] for x in s["unusable"]] == [f"train-00000-of-00001.parquet row {r}" for r in (1, 2, 3)]
    res = cli("stats", bad)
    assert res.returncode == 0 and "3 rows a loader cannot use" in res.stdout and "row 2: no turns (null)" in res.stdout
    res = cli("preview", bad, "-n", "5")
    said = " ".join(res.stdout.split())
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert said.count("a loader cannot use this sample") == 3 and "this sample: broken image" in said and "Q9?" in said
    res = cli("push", bad, "--repo-id", "org/x", "--dry-run", HF_ENDPOINT="http://127.0.0.1:9", HF_TOKEN="hf_x")
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "3 rows a loader cannot use" in said and "row 1: broken image" in said, said
    assert "nothing pushed" in said and "Traceback" not in said
    (tmp_path / "m.yaml").write_text(f"sources:\n- {{name: bad, path: {bad}, repeat: 1}}\n")
    res = cli("mix", str(tmp_path / "m.yaml"), "--out", str(tmp_path / "mix"), "--json")
    [src] = json.loads(res.stdout)["sources"]
    assert res.returncode == 0 and src["realised"] == 2 and src["broken_images"] == 3, res.stderr
    assert sorted(e["row"] for e in src["broken_examples"]) == [1, 2, 3]
    assert json.loads(cli("stats", str(tmp_path / "mix"), "--json").stdout)["unusable_rows"] == 0
    pytest.importorskip("torch")
    from docsynth.loader import MixtureDataset

    with pytest.raises(DocsynthError, match=r"train-00000-of-00001.parquet row 1: broken image"):
        list(MixtureDataset(bad, shuffle_buffer=1, decode_images=False))


def test_export_leaves_out_rows_a_loader_would_fail_on_and_checks_the_card(tmp_path):
    """Through the CLI: a broken image, a null texts and a null images are left out and named (exit
    0; 3 with --strict), and load_dataset of the export reads every row; a dataset whose shards do
    not hold the rows its card says (one of three shards deleted) is an error naming both counts."""
    from docsynth.config.mixture import Mixture
    from docsynth.mixing.mixer import run_mix

    _bad_rows(tmp_path / "bad" / "data")

    def cli(*args):
        return invoke("export", *args)
    res = cli(str(tmp_path / "bad"), "--out", str(tmp_path / "out"), "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["rows"] == 2 and s["rejects"] == 3
    assert [x.split(": ")[0] for x in s["left_out"]] == [f"train-00000-of-00001.parquet row {r}" for r in (1, 2, 3)]
    assert "broken image" in s["left_out"][0] and "no turns (null)" in s["left_out"][1] and "no images" in s["left_out"][2]
    assert "row 1 left out: broken image" in " ".join(res.stderr.split())
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train", cache_dir=str(tmp_path / "c"))
    assert [r["messages"][0]["content"][-1]["text"] for r in ds] == ["Q0?", "Q9?"]
    assert cli(str(tmp_path / "bad"), "--out", str(tmp_path / "out2"), "--strict").returncode == 3

    make(tmp_path / "src")
    run_mix(Mixture.model_validate({"shard_rows": 2, "sources": [{"name": "s", "path": str(tmp_path / "src"),
                                                                   "repeat": 1}]}), tmp_path / "mix")
    shards = sorted((tmp_path / "mix" / "data").glob("train-*.parquet"))
    assert len(shards) == 3
    shards[1].unlink()
    res = cli(str(tmp_path / "mix"), "--out", str(tmp_path / "out3"))
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "its card says 5 rows, but its 2 shards hold 3" in said, said
    # the mixer reads it the same way, as a source
    (tmp_path / "m.yaml").write_text(json.dumps({"sources": [{"name": "cut", "path": str(tmp_path / "mix"), "repeat": 1}]}))
    res = invoke("mix", str(tmp_path / "m.yaml"), "--out",
                          str(tmp_path / "out4"))
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "source 'cut': the card of" in said and "says 5 rows, but its 2 shards hold 3" in said, said
