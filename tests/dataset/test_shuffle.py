"""The mixer's external shuffle on its own: rows added in batches, with places and shards, come
back shard by shard in order of place, whatever the batching, the open-file limit (segments) and
the gather path (one slice per row, or one take per spilled batch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from docsynth.dataset.cauldron import SCHEMA
from docsynth.dataset.permute import Permutation
from docsynth.dataset.shuffle import Spill
from tests.dataset.mixsources import rows


@pytest.mark.parametrize("step", [1, 3, 50, 10_000])  # small steps take slices of rows, large ones take per batch
@pytest.mark.parametrize("max_open", [2, None])  # 2: shards' files are closed and reopened (many segments)
def test_rows_come_back_by_shard_in_order_of_place(tmp_path, step, max_open):
    n, n_shards = 700, 5
    table = pa.Table.from_pylist(rows("s", n, turns=2), schema=SCHEMA)
    place = Permutation(n, 7)(np.arange(n))
    shard = place * n_shards // n
    spill = Spill(tmp_path, n_shards, queued=10_000, max_open=max_open)
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
        assert max(len(v) for v in spill.segments.values()) > 1
    by_place = np.argsort(place)
    for s in range(n_shards):
        groups = list(spill.groups(s, step))
        assert all(g.num_rows == step for g in groups[:-1])
        got = [r["texts"][0]["user"] for g in groups for r in g.to_pylist()]
        want = [f"s/{i}" for i in by_place[shard[by_place] == s]]
        assert got == want
        assert groups[0].schema.names == SCHEMA.names
        assert not spill.path(s).exists() or spill.pending  # removed by the writer thread
    spill.close()
    assert not list(tmp_path.glob("*.arrow"))


def test_a_failed_write_is_raised_and_close_after_it_returns(tmp_path):
    table = pa.Table.from_pylist(rows("s", 10), schema=SCHEMA).to_batches()[0]
    spill = Spill(tmp_path / "missing", 2, queued=1)  # its folder does not exist: the writer fails
    with pytest.raises(OSError):
        for _ in range(3):
            spill.add(table, np.arange(10), np.arange(10), np.arange(10) % 2)
        spill.finish()
    spill.close(abort=True)
