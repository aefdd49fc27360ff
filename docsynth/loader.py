"""Reading a mixture (or any docsynth dataset) in training code: a torch IterableDataset that
splits the rows across ranks and dataloader workers without overlap, shuffles with a buffer,
and resumes mid-epoch at exactly the next sample.

    from docsynth.loader import MixtureDataset
    ds = MixtureDataset("mix/", seed=0, output="messages")      # rank/world from torch.distributed
    loader = ds.loader(batch_size=8, num_workers=2, collate_fn=my_collate)
    for batch in loader: ...
    torch.save(loader.state_dict(), "loader.pt")                 # with the model checkpoint
    ...
    loader.load_state_dict(torch.load("loader.pt"))              # next iteration resumes exactly

How an epoch is ordered, so that any point in it can be recomputed from a count:
- the shards' row groups are put in a seeded order (seed, epoch) and read as one sequence;
- the sequence is cut into rank x worker contiguous slices of equal length (within one row);
- each slice goes through a shuffle buffer whose choices are a hash of (seed, epoch, worker,
  step), not a random state, so the buffer after k samples is computed from k alone;
- with several workers, torch's DataLoader takes batches from them in turn; `MixtureLoader`
  counts the batches it handed out and turns that back into a count per worker.
The dataset is resumable on its own too (`state_dict()` inside a worker, or with num_workers=0),
which is the protocol torchdata's StatefulDataLoader uses.
"""

from __future__ import annotations

import io
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq

from docsynth.dataset.cauldron import dataset_shards
from docsynth.dataset.messages import to_messages
from docsynth.dataset.rowcheck import RowCheck
from docsynth.dataset.permute import Permutation, _mix
from docsynth.core.errors import DocsynthError, MissingDependencyError

try:
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info
except ImportError as e:  # torch is the training code's dependency, not docsynth's
    raise MissingDependencyError("docsynth.loader needs torch: pip install 'docsynth[loader]'") from e


def shards(path: str | Path) -> list[Path]:
    """A mixture's or dataset's shards (in a mixture, the manifest's order is this sorted order),
    or the parquet files of a plain folder."""
    try:
        return dataset_shards(Path(path))
    except DocsynthError:
        files = sorted(Path(path).glob("*.parquet"))
        if not files:
            raise
        return files


class MixtureDataset(IterableDataset):
    """Cauldron rows (or chat messages) of a mixture, for one rank; see the module docstring."""

    def __init__(self, path: str | Path, *, seed: int = 0, epoch: int = 0, shuffle_buffer: int = 512,
                 rank: int | None = None, world_size: int | None = None,
                 output: Literal["cauldron", "messages"] = "cauldron", decode_images: bool = True) -> None:
        super().__init__()
        if output not in ("cauldron", "messages"):
            raise ValueError(f"output must be 'cauldron' or 'messages', not {output!r}")
        self.path = str(path)
        self.files = [str(f) for f in shards(path)]
        self.groups: list[tuple[int, int, int]] = []  # (file, row group, rows)
        for fi, f in enumerate(self.files):
            meta = pq.read_metadata(f)
            self.groups += [(fi, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        self.num_rows = sum(g[2] for g in self.groups)
        dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = rank if rank is not None else torch.distributed.get_rank() if dist_on else int(os.environ.get("RANK", 0))
        self.world_size = world_size if world_size is not None else (
            torch.distributed.get_world_size() if dist_on else int(os.environ.get("WORLD_SIZE", 1)))
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in 0..{self.world_size - 1}")
        self.seed, self.epoch, self.buffer = seed, epoch, max(1, shuffle_buffer)
        self.output, self.decode_images = output, decode_images
        self._start: dict[int, int] = {}  # worker -> samples already consumed this epoch (a resume)
        self._shift = 0  # a resumed DataLoader's worker 0 plays the worker whose turn was next
        self._consumed = 0  # in this process's iterator: samples yielded this epoch
        self.warn_split = True  # say so when accelerate splits this (already split) dataset again

    # ----- the order of an epoch -------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._start, self._shift = epoch, {}, 0

    def _slice(self, worker: int, workers: int) -> tuple[list[int], int, int]:
        """The epoch's row-group order, and this worker's [lo, hi) of the rows read in that order."""
        order = Permutation(len(self.groups), self.seed, self.epoch)(np.arange(len(self.groups))).tolist()
        slots = self.world_size * workers
        slot = self.rank * workers + worker
        return order, self.num_rows * slot // slots, self.num_rows * (slot + 1) // slots

    def worker_rows(self, workers: int) -> list[int]:
        """Samples each of this rank's dataloader workers yields in an epoch."""
        return [hi - lo for lo, hi in (self._slice(w, workers)[1:] for w in range(workers))]

    def _key(self, worker: int, workers: int) -> np.uint64:
        return np.uint64(np.random.SeedSequence([self.seed, self.epoch, self.rank * workers + worker]).generate_state(1, np.uint64)[0])

    def _choices(self, key: np.uint64, steps: np.ndarray) -> np.ndarray:
        """The buffer slot replaced at each step (a hash, so any step's choice is known alone)."""
        return (_mix(steps.astype(np.uint64) ^ key) % np.uint64(self.buffer)).astype(np.int64)

    # ----- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict]:
        if self.world_size > 1 and self.warn_split and _under_accelerate():
            warnings.warn(
                "accelerate is splitting this MixtureDataset across ranks on top of its own split by rank: each rank "
                "would see part of its share and rows are lost. Give accelerate (HF Trainer, TRL) ds.as_datasets() "
                "instead, or iterate ds.loader() without preparing it (docs/mixing.md)", stacklevel=2)
        info = get_worker_info()
        worker, workers = ((info.id + self._shift) % info.num_workers, info.num_workers) if info else (0, 1)
        order, lo, hi = self._slice(worker, workers)
        n = hi - lo
        key = self._key(worker, workers)
        start = self._start.pop(worker, 0)
        self._consumed = start
        fill = min(self.buffer, n)
        steps = n - fill  # each step reads one row into the buffer and gives one out
        # The buffer (positions in the slice) after `start` samples, from choices alone.
        buf = np.arange(fill, dtype=np.int64)
        done_steps = min(start, steps)
        if done_steps:
            t = np.arange(fill, fill + done_steps, dtype=np.int64)
            slots, first = np.unique(self._choices(key, t)[::-1], return_index=True)
            buf[slots] = t[::-1][first]  # the last row written to each slot is the one there
        rows = _Rows(self, order, lo)
        held = rows.fetch(buf.tolist())  # slice position -> row
        content = buf.tolist()
        choices: list[int] = []
        for t in range(fill + done_steps, n):
            if not choices:
                choices = self._choices(key, np.arange(t, min(n, t + 4096)))[::-1].tolist()
            j = choices.pop()
            out = held.pop(content[j])
            content[j] = t
            held[t] = rows.next_from(t)
            self._consumed += 1
            yield self._format(out)
        drain = np.argsort(self._choices(key ^ np.uint64(0x9E3779B97F4A7C15), np.arange(fill)), kind="stable")
        skip = max(0, start - steps)
        for j in drain[skip:].tolist():
            self._consumed += 1
            yield self._format(held.pop(content[j]))

    def _format(self, row: dict) -> dict:
        images = [im["bytes"] for im in row["images"]]
        if self.decode_images:
            from PIL import Image
            images = [Image.open(io.BytesIO(b)) for b in images]
        if self.output == "cauldron":
            return {"images": images, "texts": row["texts"]}
        messages = [{"role": m["role"], "content": [{k: v for k, v in p.items() if v is not None} for p in m["content"]]}
                    for m in to_messages(row["texts"], len(images))]  # the export's shape (docsynth.dataset.messages)
        return {"images": images, "messages": messages}

    # ----- resume --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where this process's iterator stands: inside a dataloader worker, that worker's count."""
        info = get_worker_info()
        return {"epoch": self.epoch, "seed": self.seed, "world_size": self.world_size,
                "worker": info.id if info else 0, "consumed": self._consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the sample after the one the state was taken at (same seed and world size)."""
        self._check(state)
        self.epoch, self._start = state["epoch"], {state["worker"]: state["consumed"]}

    def _check(self, state: dict[str, Any]) -> None:
        if state["seed"] != self.seed or state["world_size"] != self.world_size:
            raise ValueError(f"the state was taken with seed {state['seed']} and world size {state['world_size']}; "
                             f"this dataset has seed {self.seed} and world size {self.world_size}")

    def loader(self, batch_size: int = 1, num_workers: int = 0, **kwargs) -> MixtureLoader:
        return MixtureLoader(self, batch_size=batch_size, num_workers=num_workers, **kwargs)

    def as_datasets(self, num_shards: int = 64):
        """The whole epoch (not this rank's share) as a `datasets.IterableDataset` of num_shards
        shards: what accelerate, HF Trainer and TRL take without splitting the data twice. With
        dispatch_batches (accelerate's default for iterable datasets) process 0 reads every shard
        and hands each rank its part of each batch; without, accelerate calls `.shard()` and each
        rank reads its own shards. Either way every row once per epoch; a shard is this dataset's
        slice `num_shards` ways, so the order is fixed by the seed and `skip_first_batches`
        resumes exactly. Images come as `datasets` Image features (PIL when read)."""
        from docsynth.dataset.hfview import iterable_dataset

        return iterable_dataset(self, num_shards)


def _under_accelerate() -> bool:
    """Whether accelerate's IterableDatasetShard or batch dispatcher is what iterates us."""
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            return False
        if frame.f_globals.get("__name__", "").startswith("accelerate."):
            return True
        frame = frame.f_back
    return False


class _Rows:
    """Rows of a worker's slice by position: read row group by row group in the epoch's order,
    plus random access (whole row groups) to refill a resumed buffer."""

    def __init__(self, ds: MixtureDataset, order: list[int], lo: int) -> None:
        self.ds, self.order, self.lo = ds, order, lo
        sizes = [ds.groups[g][2] for g in order]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.cached_at = -1
        self.cached: list[dict] = []

    def _group(self, k: int) -> list[dict]:
        if k != self.cached_at:
            fi, g, _ = self.ds.groups[self.order[k]]
            table = pq.ParquetFile(self.ds.files[fi]).read_row_group(g, columns=["images", "texts"])
            first = sum(n for f, h, n in self.ds.groups if f == fi and h < g)
            if (check := RowCheck()).check(Path(self.ds.files[fi]), first, table):  # skipping would break exact resume
                raise DocsynthError(f"{Path(self.ds.files[fi]).parent}: {check.message()}: `docsynth export "
                                    f"{self.ds.path} --out DIR` writes a copy without them")
            self.cached = table.to_pylist()
            self.cached_at = k
        return self.cached

    def next_from(self, pos: int) -> dict:
        """The row at slice position pos (read in order, a row group at a time)."""
        at = self.lo + pos
        k = int(np.searchsorted(self.starts, at, side="right")) - 1
        return self._group(k)[at - int(self.starts[k])]

    def fetch(self, positions: list[int]) -> dict[int, dict]:
        return {p: self.next_from(p) for p in sorted(positions)}


class MixtureLoader(DataLoader):
    """A DataLoader over a MixtureDataset whose state_dict() records the batches handed out, so
    load_state_dict() resumes at exactly the next batch, with any number of workers."""

    def __init__(self, dataset: MixtureDataset, batch_size: int = 1, num_workers: int = 0, **kwargs) -> None:
        if kwargs.get("drop_last"):
            raise ValueError("MixtureLoader keeps every sample (drop_last=False)")
        super().__init__(dataset, batch_size=batch_size, num_workers=num_workers, **kwargs)
        self._batches = 0

    def __iter__(self):
        ds: MixtureDataset = self.dataset
        it = super().__iter__()
        if self.num_workers:  # the workers have their copy of the resume point; this one is spent
            ds._start, ds._shift = {}, 0
        for batch in it:
            self._batches += 1
            yield batch
        ds.set_epoch(ds.epoch + 1)  # each pass over the loader is the next epoch
        self._batches = 0

    def state_dict(self) -> dict[str, Any]:
        ds = self.dataset
        return {"epoch": ds.epoch, "seed": ds.seed, "world_size": ds.world_size, "batches": self._batches,
                "batch_size": self.batch_size, "num_workers": self.num_workers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ds: MixtureDataset = self.dataset
        ds._check(state)
        if (state["batch_size"], state["num_workers"]) != (self.batch_size, self.num_workers):
            raise ValueError(f"the state was taken with batch_size {state['batch_size']} and num_workers "
                             f"{state['num_workers']}; this loader has {self.batch_size} and {self.num_workers}")
        ds.set_epoch(state["epoch"])
        workers = max(1, self.num_workers)
        per_worker = -(-np.array(ds.worker_rows(workers)) // self.batch_size)  # batches each worker yields
        taken = np.zeros(workers, dtype=np.int64)
        left, w = state["batches"], 0
        while left > 0:  # the DataLoader takes batches from its workers in turn, skipping finished ones
            if taken[w] < per_worker[w]:
                taken[w] += 1
                left -= 1
            elif (taken >= per_worker).all():
                break
            w = (w + 1) % workers
        rows = ds.worker_rows(workers)
        ds._start = {w: int(min(taken[w] * self.batch_size, rows[w])) for w in range(workers)}
        ds._shift = w if self.num_workers else 0
        self._batches = state["batches"]
