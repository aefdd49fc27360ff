"""The mixer's external shuffle on its own: rows added in batches, with places and shards, come
back shard by shard in order of place, whatever the batching, the open-file limit (files closed
and reopened), the way images are spilled (apart from their rows or with them) and the gather
path (one slice per row, or one take per spilled batch)."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from docsynth.dataset.cauldron import SCHEMA
from docsynth.dataset.permute import Permutation
from docsynth.core.readahead import interleave
from docsynth.mixing.shuffle import OutputFull, Spill, _preallocate
from tests.dataset.mixsources import png, rows


@pytest.mark.parametrize("step", [1, 3, 50, 10_000])  # small steps take slices of rows, large ones take per batch
@pytest.mark.parametrize("max_open", [2, None])  # 2: shards' files are closed and reopened
@pytest.mark.parametrize("split_min", [0, 1 << 40])  # image bytes written apart from the rows, or copied with them
def test_rows_come_back_by_shard_in_order_of_place(tmp_path, step, max_open, split_min):
    n, n_shards = 700, 5
    table = pa.Table.from_pylist(rows("s", n, turns=2), schema=SCHEMA)
    place = Permutation(n, 7)(np.arange(n))
    shard = place * n_shards // n
    spill = Spill(tmp_path, n_shards, queued=10_000, max_open=max_open, split_min=split_min)
    rng = np.random.default_rng(0)
    a = 0
    while a < n:  # batches of random sizes; each gives a random subset of its rows, then the rest
        b = min(n, a + int(rng.integers(1, 90)))
        batch = table.slice(a, b - a).combine_chunks().to_batches()[0]
        local = rng.permutation(b - a)
        for part in np.array_split(local, 2):
            if len(part):
                spill.add(batch, part, place[a + part], shard[a + part])
        a = b
    spill.finish()
    assert sorted(spill.rows.items()) == [(s, int((shard == s).sum())) for s in range(n_shards)]
    if max_open == 2:
        assert spill.opened > n_shards
    by_place = np.argsort(place)
    for s in range(n_shards):
        groups = list(spill.groups(s, step))
        assert all(g.num_rows == step for g in groups[:-1])
        got = [r["texts"][0]["user"] for g in groups for r in g.to_pylist()]
        want = [f"s/{i}" for i in by_place[shard[by_place] == s]]
        assert got == want
        assert groups[0].schema.names == SCHEMA.names
        assert spill.path(s).exists() and not spill.read
        spill.done(s)  # now it may be written over
        dest = tmp_path / f"out-{s}.parquet"
        with spill.output(dest, spill.output_room(s, 1), reuse=s % 2 == 0) as out:
            out.file.write(b"x" * (s + 1))
            out.written()
        assert dest.read_bytes() == b"x" * (s + 1)  # written over from the start, then cut
        assert not spill.read and (s % 2 or not spill.path(s).exists())  # renamed; else removed in the background
    spill.close()
    assert not list(tmp_path.glob("*.spill"))


def _spilled(root, expect):
    n, n_shards = 300, 3
    table = pa.Table.from_pylist(rows("s", n, turns=2), schema=SCHEMA).combine_chunks().to_batches()[0]
    place = Permutation(n, 3)(np.arange(n))
    spill = Spill(root, n_shards, expect=expect, split_min=0)
    spill.add(table, np.arange(n), place, place * n_shards // n)
    spill.finish()
    return spill, n_shards


def test_spill_files_are_preallocated_and_outputs_keep_none_of_it(tmp_path):
    probe = tmp_path / "probe"
    with open(probe, "wb") as f:
        _preallocate(f.fileno(), 4 << 20)
    if probe.stat().st_blocks * 512 < 4 << 20:
        pytest.skip("this file system does not preallocate (fallocate with FALLOC_FL_KEEP_SIZE)")
    assert probe.stat().st_size == 0  # reserved, the size unchanged
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, n_shards = _spilled(tmp_path / "a", 0)
    pre, _ = _spilled(tmp_path / "b", 4 << 20)
    for s in range(n_shards):
        st = pre.path(s).stat()
        assert st.st_blocks * 512 >= 4 << 20 > st.st_size == plain.path(s).stat().st_size
        assert pre.path(s).read_bytes() == plain.path(s).read_bytes()
        assert [g.to_pylist() for g in pre.groups(s, 7)] == [g.to_pylist() for g in plain.groups(s, 7)]
        pre.done(s)
        dest = tmp_path / f"out-{s}"
        with pre.output(dest, pre.output_room(s, 1)) as out:  # written over the spill file, then cut
            out.file.write(b"z" * 5000)
            out.written()
        assert dest.stat().st_size == 5000 and dest.stat().st_blocks * 512 <= 8192  # none of the reservation kept
    for sp in (plain, pre):
        sp.close()


def test_output_past_its_room_raises_output_full(tmp_path):
    spill = Spill(tmp_path, 1)
    (tmp_path / "00000.spill").write_bytes(b"old" * 100)
    spill.done(0)
    with pytest.raises(OutputFull), spill.output(tmp_path / "out", 10) as out:
        out.file.write(b"y" * 11)
    spill.close()


def test_a_failed_write_is_raised_and_close_after_it_returns(tmp_path):
    table = pa.Table.from_pylist(rows("s", 10), schema=SCHEMA).to_batches()[0]
    spill = Spill(tmp_path / "missing", 2, queued=1)  # its folder does not exist: the writer fails
    with pytest.raises(OSError):
        for _ in range(3):
            spill.add(table, np.arange(10), np.arange(10), np.arange(10) % 2)
        spill.finish()
    spill.close(abort=True)


def test_interleave_reads_each_source_in_order_raises_its_errors_and_stops_early():
    sources = [lambda k=k: iter(range(k * 100, k * 100 + k)) for k in range(7)]
    got = list(interleave(sources, workers=3, depth=2))
    assert sorted(got) == [(k, k * 100 + j) for k in range(7) for j in range(k)]
    for k in range(7):
        assert [x for i, x in got if i == k] == list(range(k * 100, k * 100 + k))

    def broken():
        yield 1
        raise OSError("source 'b': cannot read x.parquet")

    with pytest.raises(OSError, match="source 'b'"):
        list(interleave([lambda: iter(range(1000)), broken], workers=2, depth=1))
    endless = [lambda: iter(range(10**9))] * 2
    before = threading.active_count()
    for i, _ in enumerate(interleave(endless, workers=2, depth=1)):
        if i == 5:
            break
    assert threading.active_count() == before  # the readers stopped


def _odd_images() -> pa.RecordBatch:
    """Rows with every kind of null in `images` (the list, an image, its bytes), empty lists,
    null lists over images, several images per row, and arrays that do not start at 0."""
    image = SCHEMA.field("images").type.value_type
    pngs = [png(k, 4 + k % 5) for k in range(40)]
    values = pa.array([None if k % 11 == 5 else {"bytes": None if k % 7 == 3 else pngs[k], "path": f"p{k}" if k % 3 else None}
                       for k in range(40)], image).slice(2)  # structs that start at 2
    offsets = np.array([0, 2, 2, 5, 6, 6, 9, 10, 14, 14, 15, 20, 24, 25, 30, 33, 34, 36, 38], np.int32)
    null = np.zeros(len(offsets) - 1, bool)
    null[[3, 9, 12]] = True  # 3 and 12 are null lists over images
    images = pa.ListArray.from_arrays(pa.array(offsets), values, type=SCHEMA.field("images").type, mask=pa.array(null))
    texts = pa.array([[{"user": f"u{i}", "assistant": "a", "source": "s"}] for i in range(len(null))], SCHEMA.field("texts").type)
    return pa.RecordBatch.from_arrays([images, texts], schema=SCHEMA).slice(1)  # and a batch that starts at 1


@pytest.mark.parametrize("split_min", [0, 1 << 40])
def test_images_come_back_whole_with_every_null_and_offset(tmp_path, split_min):
    batch = _odd_images()
    n = batch.num_rows
    want = batch.to_pylist()
    images = [r["images"] for r in want]
    assert None in images and [] in images and any(i and None in i for i in images)
    assert any(i and any(x and x["bytes"] is None for x in i) for i in images)
    spill = Spill(tmp_path, 2, split_min=split_min)
    take = np.r_[np.arange(n), np.arange(0, n, 3)]  # some rows twice
    place = Permutation(len(take), 1)(np.arange(len(take)))
    spill.add(batch, take, place, place * 2 // len(take))
    spill.finish()
    assert all((r.images is not None) == (split_min == 0) for rs in spill.records.values() for r in rs)
    got = [r for s in range(2) for g in spill.groups(s, 4) for r in g.to_pylist()]
    assert got == [want[take[i]] for i in np.argsort(place)]
    for s in range(2):
        for g in spill.groups(s, 100):
            g.validate(full=True)
    spill.close()
