"""Run by torchrun in tests/consumers/test_accelerate.py: one rank of a 2-process CPU (gloo) job
that reads a mixture through accelerate, as HF Trainer and TRL do, and writes what it saw."""

import json
import os
import sys

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from torch.utils.data import DataLoader

from docsynth.loader import MixtureDataset


def ids(batch):
    return torch.tensor([int(r["texts"][0]["user"].split("/")[1]) for r in batch])


if __name__ == "__main__":
    path, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    acc = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(dispatch_batches=mode == "dispatch"))
    plain = MixtureDataset(path, seed=7)  # split by rank already: accelerate must not split it again
    ds = plain if mode == "plain" else plain.as_datasets(num_shards=8)

    def loader():
        return acc.prepare(DataLoader(ds, batch_size=4, collate_fn=ids))

    epoch = [b.tolist() for b in loader()]
    k = len(epoch) // 3  # a checkpoint after k steps, then a restart that skips them
    rest = [b.tolist() for b in acc.skip_first_batches(loader(), k)]
    with open(f"{out}/rank{acc.process_index}.json", "w") as f:
        json.dump({"world": acc.num_processes, "epoch": epoch, "k": k, "rest": rest}, f)
    acc.wait_for_everyone()
    torch.distributed.destroy_process_group()
    # Skip interpreter teardown: a C++ thread of the process group, destroyed while joinable, can
    # abort the process after its work is done ("terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
