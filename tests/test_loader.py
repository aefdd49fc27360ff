"""The training loader on a real mixture, with real torch DataLoader worker processes: exactly
once per epoch across ranks and workers, determinism, and resume at exactly the next sample."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from docsynth.mixing.mixer import run_mix
from docsynth.loader import MixtureDataset
from docsynth.config.mixture import Mixture
from tests.dataset.mixsources import cauldron_source

pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on 2 cores is the point


@pytest.fixture(scope="module")
def mixture(tmp_path_factory) -> Path:
    """345 distinct rows from 6 sources, 5 shards in row groups of a few rows (several per shard)."""
    root = tmp_path_factory.mktemp("loader")
    for i in range(6):
        cauldron_source(root, f"s{i}", 30 + 11 * i, turns=1 + i % 3)
    m = Mixture.model_validate({"shard_rows": 70, "row_group_bytes": 100_000, "sources": [
        {"name": f"s{i}", "path": str(root / f"s{i}"), "repeat": 1} for i in range(6)]})
    run_mix(m, root / "mix")
    return root / "mix"


def ids(batch: list[dict]) -> list[str]:
    return [row["texts"][0]["user"] for row in batch]


def epoch(mixture: Path, rank: int, world: int, workers: int, batch: int = 4, stop: int | None = None,
          state: dict | None = None, **kw) -> tuple[list[str], dict | None]:
    ds = MixtureDataset(mixture, rank=rank, world_size=world, decode_images=False, **kw)
    dl = ds.loader(batch_size=batch, num_workers=workers, collate_fn=list)
    if state is not None:
        dl.load_state_dict(state)
    seen: list[str] = []
    for i, b in enumerate(dl):
        seen += ids(b)
        if stop is not None and i + 1 == stop:
            return seen, dl.state_dict()
    return seen, None


def test_two_ranks_two_workers_cover_every_sample_exactly_once(mixture):
    everything = []
    per_rank = []
    for rank in range(2):
        got, _ = epoch(mixture, rank, 2, workers=2, seed=5, shuffle_buffer=16)
        per_rank.append(len(got))
        everything += got
    assert len(everything) == 345 and len(set(everything)) == 345
    assert abs(per_rank[0] - per_rank[1]) <= 1  # ranks stay in step
    assert MixtureDataset(mixture).num_rows == 345


def test_same_seed_same_order_and_epochs_differ(mixture):
    a, _ = epoch(mixture, 0, 2, workers=2, seed=1)
    b, _ = epoch(mixture, 0, 2, workers=2, seed=1)
    c, _ = epoch(mixture, 0, 2, workers=2, seed=1, epoch=1)
    assert a == b and a != c  # another epoch: another order
    d, _ = epoch(mixture, 0, 2, workers=2, seed=2)
    assert d != a


@pytest.mark.parametrize("workers,batch,buffer", [(0, 3, 8), (2, 4, 16), (3, 5, 64), (2, 1, 1)])
def test_resume_from_state_dict_gives_exactly_the_rest(mixture, workers, batch, buffer):
    rng = random.Random(workers * 100 + batch)
    full, _ = epoch(mixture, 1, 2, workers, batch, seed=7, shuffle_buffer=buffer)
    n_batches = -(-len(full) // batch)
    for stop in sorted({1, n_batches - 1, *rng.sample(range(1, n_batches), 3)}):
        head, state = epoch(mixture, 1, 2, workers, batch, stop=stop, seed=7, shuffle_buffer=buffer)
        tail, _ = epoch(mixture, 1, 2, workers, batch, state=state, seed=7, shuffle_buffer=buffer)
        assert head + tail == full, (stop, state)


def test_a_finished_epoch_moves_the_loader_to_the_next(mixture):
    ds = MixtureDataset(mixture, seed=3, decode_images=False)
    dl = ds.loader(batch_size=8, num_workers=2, collate_fn=list)
    first = [x for b in dl for x in ids(b)]
    assert dl.state_dict()["epoch"] == 1 and dl.state_dict()["batches"] == 0
    second = [x for b in dl for x in ids(b)]
    assert Counter(first) == Counter(second) and first != second


def test_the_dataset_alone_resumes_with_its_own_state(mixture):
    ds = MixtureDataset(mixture, seed=9, shuffle_buffer=32, decode_images=False)
    full = [r["texts"][0]["user"] for r in ds]
    it = iter(ds)
    head = [next(it)["texts"][0]["user"] for _ in range(123)]
    state = ds.state_dict()
    again = MixtureDataset(mixture, seed=9, shuffle_buffer=32, decode_images=False)
    again.load_state_dict(state)
    assert head + [r["texts"][0]["user"] for r in again] == full
    with pytest.raises(ValueError, match="seed 9 and world size 1"):
        MixtureDataset(mixture, seed=8).load_state_dict(state)


def test_chat_messages_for_processors_with_decoded_images(mixture):
    ds = MixtureDataset(mixture, output="messages")
    row = next(r for r in ds if len(r["messages"]) >= 4)
    assert isinstance(row["images"][0], Image.Image) and row["images"][0].size == (8, 8)
    user, assistant = row["messages"][:2]
    assert user["role"] == "user" and user["content"][0] == {"type": "image"}
    assert user["content"][-1]["type"] == "text" and "/" in user["content"][-1]["text"]
    assert assistant == {"role": "assistant", "content": [{"type": "text", "text": "answer 0"}]}
    assert all(c["type"] == "text" for c in row["messages"][2]["content"])  # images only in the first turn
