"""Run directories on object storage (a real S3 API on loopback: moto's server): each task committed
shard first and marker last; a kill and a rerun on another machine (a fresh local copy) resume
from the bucket; only markers whose shard objects are there with the recorded size and bytes are
trusted; two runs on one run directory leave it consistent; credentials never printed; and a
local Ray run with its run directory in the bucket gives the local executor's dataset."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import text_pdf
from tests.s3server import S3, SECRET

pytest.importorskip("s3fs")
pytest.importorskip("moto")


@pytest.fixture(scope="module")
def s3():
    server = S3()
    with server.environment():
        server.fs().mkdir("runs")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("in")
    for i in range(12):
        text_pdf(d / f"doc{i:03d}.pdf", [f"Document {i}, page {p}. Order {i * 7 + p} shipped on day {p + 1}."
                                          for p in range(2)])
    return d


def ingest(s3: S3, corpus: Path, out: str, cache: Path, *extra: str, background: bool = False):
    env = {**os.environ, **s3.env, "DOCSYNTH_CACHE": str(cache)}
    cmd = [sys.executable, "-m", "docsynth.cli", "ingest", str(corpus), "--out", out, "--json", "--ocr", "never",
           "--workers", "1", *extra]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def recipe(tmp: Path) -> str:
    path = tmp / "r.yaml"
    path.write_text("inputs: {docs_per_task: 1}\n")
    return str(path)


def pages_of(s3: S3, url: str) -> dict:
    """Every page committed under a remote run: (doc_id, page) -> text and image hash."""
    out = {}
    with s3.environment():
        fs = s3.fs()
        for m in fs.glob(url.removeprefix("s3://") + "/pages/*.done.json"):
            info = json.loads(fs.cat_file(m))
            with fs.open(m.rsplit("/", 1)[0] + "/" + info["object"], "rb") as f:
                for p in pq.read_table(f).to_pylist():
                    out[(p["doc_id"], p["page"])] = (p["text"], hashlib.sha256(p["image"]).hexdigest())
    return out


def test_a_killed_remote_ingest_resumes_on_another_machine(s3, corpus, tmp_path):
    r = recipe(tmp_path)
    clean = ingest(s3, corpus, "s3://runs/clean", tmp_path / "cache-clean", "--recipe", r)
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert SECRET not in clean.stdout + clean.stderr
    want = pages_of(s3, "s3://runs/clean")
    assert len(want) == 24

    proc = ingest(s3, corpus, "s3://runs/cut", tmp_path / "cache-a", "--recipe", r, background=True)
    deadline = time.monotonic() + 300
    with s3.environment():
        fs = s3.fs()
        while len(fs.glob("runs/cut/pages/*.done.json", refresh=True)) < 3:  # committed to the bucket
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        committed = len(fs.glob("runs/cut/pages/*.done.json", refresh=True))
    assert 3 <= committed < 12

    again = ingest(s3, corpus, "s3://runs/cut", tmp_path / "cache-b", "--recipe", r)  # another machine
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["tasks_skipped"] >= committed
    assert pages_of(s3, "s3://runs/cut") == want
    assert SECRET not in again.stdout + again.stderr


def test_only_complete_commits_are_trusted_and_two_runs_leave_it_consistent(s3, corpus, tmp_path):
    r = recipe(tmp_path)
    first = ingest(s3, corpus, "s3://runs/trust", tmp_path / "c1", "--recipe", r)
    assert first.returncode == 0, first.stderr[-3000:]
    want = pages_of(s3, "s3://runs/trust")
    with s3.environment():
        fs = s3.fs()
        m0 = json.loads(fs.cat_file("runs/trust/pages/task-00000.done.json"))
        fs.rm_file(f"runs/trust/pages/{m0['object']}")  # a marker whose shard object is gone
        m1 = json.loads(fs.cat_file("runs/trust/pages/task-00001.done.json"))
        fs.pipe_file(f"runs/trust/pages/{m1['object']}", b"PAR1 torn")  # one of another size
        fs.pipe_file("runs/trust/pages/task-00002.done.json", b'{"key": ')  # a torn marker
    again = ingest(s3, corpus, "s3://runs/trust", tmp_path / "c2", "--recipe", r)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["tasks_skipped"] == 12 - 3  # exactly those three redone
    assert pages_of(s3, "s3://runs/trust") == want

    # Two runs at once on one run directory, from two machines: both finish, and every marker
    # names a complete shard object.
    procs = [ingest(s3, corpus, "s3://runs/both", tmp_path / f"m{i}", "--recipe", r, background=True) for i in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-3000:]
    assert pages_of(s3, "s3://runs/both") == want
    third = ingest(s3, corpus, "s3://runs/both", tmp_path / "m3", "--recipe", r)
    assert json.loads(third.stdout)["tasks_skipped"] == 12


@pytest.mark.slow
def test_ray_with_its_run_directory_on_s3_gives_the_local_executors_dataset(s3, tiny_model, tmp_path):
    pytest.importorskip("ray")
    from tests.run.test_ray import TAG, kill_tagged
    from tests.run.test_ray import write_recipe as ray_recipe
    from tests.run.test_run_resume import dataset_rows

    recipe_path = ray_recipe(tmp_path / "r.json", tiny_model)
    env = {**os.environ, **s3.env, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "",
           "DOCSYNTH_TEST_TAG": TAG, "DOCSYNTH_CACHE": str(tmp_path / "cache")}
    try:
        local = subprocess.run([sys.executable, "-m", "docsynth.cli", "run", str(recipe_path), "--out",
                                str(tmp_path / "local"), "--json"], capture_output=True, text=True, env=env, timeout=900)
        assert local.returncode in (0, 3), local.stderr[-3000:]
        on_ray = subprocess.run([sys.executable, "-m", "docsynth.cli", "run", str(recipe_path), "--out", "s3://runs/ray",
                                 "--executor", "ray", "--json"], capture_output=True, text=True, env=env, timeout=900)
        assert on_ray.returncode in (0, 3), on_ray.stderr[-3000:]
    finally:
        kill_tagged()
    assert SECRET not in on_ray.stdout + on_ray.stderr
    down = tmp_path / "down"
    with s3.environment():
        fs = s3.fs()
        assert len(fs.glob("runs/ray/candidates/task-*.done.json")) == 4  # committed by the engine actors
        assert len(fs.glob("runs/ray/pages/task-*.done.json")) == 4  # and by the ingest tasks
        fs.get("runs/ray/dataset/", str(down / "dataset") + "/", recursive=True)
    want = dataset_rows(tmp_path / "local")
    assert want and dataset_rows(down) == want


def test_no_credentials_fail_at_once_with_what_to_set(s3, corpus, tmp_path):
    """--out s3:// with no credentials on the machine: botocore's NoCredentialsError cannot pass
    with a retry, so it is an error at once (no retries, no backoff), naming the URL and what to set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=s3.endpoint, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               DOCSYNTH_CACHE=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "ingest", str(corpus), "--out", "s3://runs/nocreds",
                          "--ocr", "never"], capture_output=True, text=True, env=env, timeout=120)
    said = " ".join(res.stderr.split())
    assert res.returncode == 1 and "s3://runs/nocreds" in said and "no usable credentials on this machine" in said, said
    assert "retrying" not in said and "Traceback" not in said


def test_a_published_dataset_goes_up_as_readers_see_it(s3, tmp_path):
    """A run's dataset folder (docsynth.dataset.versions: README.md a link to data/.README.md) goes
    up as readers see it: the card's text as README.md and the live version's shards under data/,
    never the hidden folder of a version being written; after a second version, the card in the
    bucket names it alone, and the first version's shards stay until a reader no longer needs them."""
    import datasets
    import pyarrow as pa

    from docsynth.core.objstore import push_files
    from docsynth.dataset.versions import begin, stage_version, switch

    out = tmp_path / "run" / "dataset"
    for key, rows in (("a" * 16, [1, 2, 3]), ("b" * 16, [4, 5])):
        shutil.rmtree(out / ".data-next", ignore_errors=True)
        part = begin(out) / ".part-00000.parquet"
        pq.write_table(pa.table({"x": rows}), part)
        version = stage_version(out, [part], key)
        card = ("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: "
                f"{version.pattern}\n---\n")
        switch(out, card, version)
        (out / ".data-next").mkdir()  # as a write on its way would leave it: not uploaded
        (out / ".data-next" / "train-00000-of-00001-cccccccc.parquet").write_bytes(b"PAR1")
        with s3.environment():
            push_files(tmp_path / "run", "s3://runs/published")
    with s3.environment():
        fs = s3.fs()
        keys = sorted(k.split("runs/published/", 1)[1] for k in fs.find("runs/published"))
        assert keys == ["dataset/README.md", "dataset/data/.README.md", "dataset/data/train-00000-of-00001-aaaaaaaa.parquet",
                        "dataset/data/train-00000-of-00001-bbbbbbbb.parquet"]
        fs.get("runs/published/dataset/", str(tmp_path / "down") + "/", recursive=True)
    ds = datasets.load_dataset(str(tmp_path / "down"), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds["x"] == [4, 5]
