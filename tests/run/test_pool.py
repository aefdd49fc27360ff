"""The process pool survives a worker that dies, and pins the crash on its task."""

from __future__ import annotations

import hashlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from docsynth.core.pool import run_tasks
from docsynth.core.files import FollowingSha256, atomic_write, file_sha256
from docsynth.core.errors import DocsynthError
from docsynth.core.tasks import Task, TaskStore


def square_or_segfault(task: Task, marker_dir: str) -> int:
    if task.index == 3 and not (Path(marker_dir) / "healed").exists():
        os.kill(os.getpid(), signal.SIGSEGV)  # a real native crash of the worker
    return task.index ** 2


def test_a_segfaulting_task_is_isolated_and_the_others_finish(tmp_path):
    tasks = [Task(i, str(i)) for i in range(8)]
    results, crashes = {}, []

    def on_crash(task: Task) -> bool:
        crashes.append(task.index)
        if len(crashes) == 1:  # first lone crash: the stage "learns" and retries
            (tmp_path / "healed").touch()
            return True
        return False

    run_tasks(square_or_segfault, tasks, (str(tmp_path),), 2, lambda t, r: results.__setitem__(t.index, r), on_crash)
    assert results == {i: i * i for i in range(8)}
    assert crashes == [3]


def test_a_pool_found_broken_at_submit_loses_no_task(tmp_path, monkeypatch):
    # A worker can die between a wait and the next submit; submit then raises. Seen once in CI
    # (task 7 of the test above was never run); forced here on the third submit.
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool
    real, calls = ProcessPoolExecutor.submit, []

    def submit(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise BrokenProcessPool("a worker died")
        return real(self, *a, **k)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit)
    (tmp_path / "healed").touch()
    results = {}
    run_tasks(square_or_segfault, [Task(i, str(i)) for i in range(8)], (str(tmp_path),), 2,
              lambda t, r: results.__setitem__(t.index, r), lambda t: False)
    assert results == {i: i * i for i in range(8)}


def test_a_task_that_always_crashes_is_given_up_and_the_run_goes_on(tmp_path):
    tasks = [Task(i, str(i)) for i in range(6)]
    results, crashes = {}, []
    run_tasks(square_or_segfault, tasks, (str(tmp_path),), 2, lambda t, r: results.__setitem__(t.index, r),
              lambda t: crashes.append(t.index) or False)
    assert crashes == [3]
    assert results == {i: i * i for i in range(6) if i != 3}


def test_task_store_trusts_only_a_marker_with_the_same_key(tmp_path):
    store = TaskStore(tmp_path)
    task = Task(0, "key-a")
    atomic_write(store.shard(task), lambda p: pq.write_table(pa.table({"x": [1, 2]}), p))
    assert store.done(task) is None  # a shard without a marker is redone
    store.commit(task, {"pages": 2})
    assert store.done(task) == {"key": "key-a", "pages": 2, "rows": 2, "sha256": file_sha256(store.shard(task))}
    assert store.done(Task(0, "key-b")) is None  # other inputs or config


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "shard.parquet"

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half a shard")
        raise OSError(28, "No space left on device")

    try:
        atomic_write(target, half_then_fail)
    except OSError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_torn_or_truncated_shard_is_not_trusted(tmp_path):
    store = TaskStore(tmp_path)
    task = Task(0, "k")
    atomic_write(store.shard(task), lambda p: pq.write_table(pa.table({"x": list(range(100))}), p))
    store.commit(task, {})
    assert store.done(task)["rows"] == 100
    data = store.shard(task).read_bytes()
    store.shard(task).write_bytes(data[: len(data) // 2])  # as a power loss could leave it
    assert store.done(task) is None
    store.shard(task).write_bytes(b"")
    assert store.done(task) is None


def test_bytes_flipped_inside_a_shard_whose_footer_still_reads_are_caught(tmp_path):
    store = TaskStore(tmp_path)
    task = Task(0, "k")
    atomic_write(store.shard(task), lambda p: pq.write_table(pa.table({"x": list(range(1000))}), p, compression="none"))
    store.commit(task, {})
    data = bytearray(store.shard(task).read_bytes())
    data[100:104] = b"\xff\xff\xff\xff"  # inside the first data page; the footer is untouched
    store.shard(task).write_bytes(bytes(data))
    assert pq.read_metadata(store.shard(task)).num_rows == 1000  # what resume used to trust
    assert store.done(task) is None  # redone
    with pytest.raises(DocsynthError, match=r"task-00000.parquet does not hold the bytes its task wrote"):
        store.finished(verify=True)  # a downstream reader is told which file
    assert [f.index for f in store.finished()] == [0]


def env_value(task: Task, name: str) -> str | None:
    return os.environ.get(name)


def test_workers_see_the_environment_of_each_run(monkeypatch):
    """The forkserver outlives a run; the environment of the next run must still reach workers."""
    got = {}
    for value in ("first", "second"):
        monkeypatch.setenv("DOCSYNTH_TEST_VALUE", value)
        run_tasks(env_value, [Task(0, "k")], ("DOCSYNTH_TEST_VALUE",), 1,
                  lambda t, r, v=value: got.__setitem__(v, r), lambda t: False)
    assert got == {"first": "first", "second": "second"}


def test_sha256_of_a_file(tmp_path):
    data = os.urandom(40_000_000)
    p = tmp_path / "f"
    for size in (0, 1, 4095, 4097, 70_001, 16 << 20, (16 << 20) + 1, len(data)):  # maps of 16 MB
        p.write_bytes(data[:size])
        assert file_sha256(p) == hashlib.sha256(data[:size]).hexdigest()


@pytest.mark.parametrize("min_step", [1, 4 << 20])
def test_sha256_following_a_file_as_it_is_written(tmp_path, min_step):
    """The hash follows the writer through uneven writes (some past a 16 MB map), a rename and
    a file cut short at the end (as a spill file written over is), and equals the whole file's."""
    data = os.urandom(40_000_000)
    p = tmp_path / "f"
    p.write_bytes(os.urandom(50_000_000))  # old content past the end, cut off at finish
    with ThreadPoolExecutor(1) as pool, open(p, "r+b", buffering=0) as f:
        h = FollowingSha256(pool, min_step)
        h.start(os.open(p, os.O_RDONLY))
        at = 0
        for n in (1, 4095, 70_001, 17 << 20, 3, 5_000_000):
            f.write(data[at:at + n])
            at += n
            h.advance(at)
        p.rename(tmp_path / "g")
        f.write(data[at:])
        f.truncate(len(data))
        h.finish(len(data))
        assert h.result() == hashlib.sha256(data).hexdigest()
    assert file_sha256(tmp_path / "g") == hashlib.sha256(data).hexdigest()


def test_an_abandoned_following_hash_stops_and_closes_its_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * 1000)
    fd = os.open(p, os.O_RDONLY)
    with ThreadPoolExecutor(1) as pool:
        h = FollowingSha256(pool)
        h.start(fd)
        h.advance(500)
        h.abandon()
        assert h.result() is None
        never = FollowingSha256(pool)  # abandoned before it started (a failure in between): nothing waits
        never.abandon()
        assert never.result() is None
    with pytest.raises(OSError):
        os.fstat(fd)  # closed


def test_the_store_alone_names_shards_and_markers_and_lists_finished_tasks(tmp_path):
    store = TaskStore.of(tmp_path, "ingest")
    assert store.finished() == [] and not store.root.exists()  # reading creates nothing
    store.prepare()
    (store.root / ".task-00003.parquet.abcd.tmp").write_bytes(b"torn")  # a killed writer's temp file
    store.prepare()
    assert not list(store.root.glob(".*.tmp"))
    for i in (2, 0):
        task = Task(i, f"k{i}")
        atomic_write(store.shard(task), lambda p, n=i: pq.write_table(pa.table({"x": [n] * (n + 1)}), p))
        store.commit(task, {"pages": i + 1})
    atomic_write(store.shard(Task(1, "k1")), lambda p: pq.write_table(pa.table({"x": [1]}), p))  # no marker yet
    cache: dict = {}
    done = store.finished(cache)
    assert [(f.index, f.shard.name, f.info["pages"], f.info["key"]) for f in done] == \
        [(0, "task-00000.parquet", 1, "k0"), (2, "task-00002.parquet", 3, "k2")]
    assert store.finished(cache) == done and store.finished_shards() == [f.shard for f in done]
    assert store.info(2) == done[1]
    assert store.sidecar(Task(2, "k2"), "poison.jsonl") == store.root / "task-00002.poison.jsonl"
    store.forget()
    assert store.finished() == [] and store.done(Task(0, "k0")) is None and store.shard(Task(0, "k0")).exists()
