"""Mixture sources on object storage (a real S3 API on loopback: moto's server): a Hub-style
folder with a card, a glob of shards and a single file mix to the same bytes as their local
copies; a missing source and a refused one are one message naming the source and the URL."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from docsynth.config.mixture import Mixture
from docsynth.dataset.cauldron import SCHEMA
from docsynth.mixing.mixer import run_mix
from docsynth.dataset.sources import SourceError, open_source
from tests.dataset.mixsources import cauldron_source, rows
from tests.s3server import S3, SECRET

pytest.importorskip("s3fs")
pytest.importorskip("moto")


def sources(root) -> list[dict]:
    return [{"name": "chartqa", "path": f"{root}/cauldron", "config": "chartqa", "repeat": 1},
            {"name": "glob", "path": f"{root}/globbed/data/train-*.parquet", "repeat": 1},
            {"name": "file", "path": f"{root}/cauldron/ai2d/train-00000-of-00001.parquet", "max_samples": 3}]


def test_remote_sources_mix_to_the_bytes_of_their_local_copies(tmp_path):
    hub = tmp_path / "src" / "cauldron"
    for cfg, n in (("ai2d", 6), ("chartqa", 9)):
        (hub / cfg).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows(cfg, n), schema=SCHEMA), hub / cfg / "train-00000-of-00001.parquet",
                       row_group_size=4)
    (hub / "README.md").write_text("---\n" + yaml.safe_dump({"configs": [
        {"config_name": c, "data_files": [{"split": "train", "path": f"{c}/train-*"}]} for c in ("ai2d", "chartqa")]}) + "---\n")
    cauldron_source(tmp_path / "src", "globbed", 8, shards=2)
    s3 = S3()
    try:
        with s3.environment():
            fs = s3.fs()
            fs.mkdir("mix")
            fs.put(str(tmp_path / "src") + "/", "mix/src/", recursive=True)
            remote = run_mix(Mixture.model_validate({"seed": 3, "sources": sources("s3://mix/src")}), tmp_path / "remote")
            with pytest.raises(SourceError, match=r"source 'gone': .*s3://mix/src/nothing-here.*not found \(404\)"):
                open_source(Mixture.model_validate({"sources": [
                    {"name": "gone", "path": "s3://mix/src/nothing-here/x.parquet", "repeat": 1}]}).sources[0])
            with s3.refusing(), pytest.raises(SourceError, match=r"source 'glob': .*access denied \(403\)") as refused:
                open_source(Mixture.model_validate({"sources": sources("s3://mix/src")}).sources[1])
            assert SECRET not in str(refused.value)
    finally:
        s3.stop()
    local = run_mix(Mixture.model_validate({"seed": 3, "sources": sources(tmp_path / "src")}), tmp_path / "local")
    assert {r.name: r.kind for r in remote.sources} == {"chartqa": "hub", "glob": "glob", "file": "file"}
    assert remote.rows == local.rows == 9 + 8 + 3
    a = sorted((tmp_path / "remote" / "data").glob("*.parquet"))
    b = sorted((tmp_path / "local" / "data").glob("*.parquet"))
    assert len(a) == len(b) and [pq.read_table(p).to_pylist() for p in a] == [pq.read_table(p).to_pylist() for p in b]
