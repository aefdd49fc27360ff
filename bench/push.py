"""Benchmark of `docsynth push` against a plain `HfApi.upload_folder` of the same dataset, both
with the real huggingface_hub client against the stand-in Hub on loopback (tests/hubserver.py),
in one process; then a second push of the unchanged dataset (what a resumed push costs).

    .venv/bin/python bench/push.py [--gb 0.5] [--repeat 3]

docsynth push uploads through huggingface_hub's create_commit (its preupload, LFS and Xet paths);
what it adds is its own commit bounds (push.commit_files / commit_bytes), the skipping of shards
already on the Hub with the same sha256 (from mixture.json where it has them), and the last
commit (the card, and the old version's shards removed). upload_folder makes one commit of
everything. So the like-for-like ratio is docsynth's default push (8 shards: one commit, then the
card's) against upload_folder; `commit_files=4` shows what a second commit costs.
Prints median MB/s of each, the ratios, and the time of the no-op second push. Loopback has no
network cost, so this measures the client-side work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN = "hf_benchTOKEN"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from tests.hubserver import Hub
    with Hub(TOKEN) as hub:
        os.environ.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
        os.environ.pop("HF_HUB_OFFLINE", None)
        from huggingface_hub import HfApi

        import bench.mix as bm
        from docsynth.mixing.mixer import run_mix
        from docsynth.config.push import PushOptions
        from docsynth.hub import push
        from docsynth.config.mixture import Mixture
        work = Path(tempfile.mkdtemp(prefix="docsynth-bench-push-"))
        try:
            bm.SOURCES = 1
            bm.make_sources(work / "src", int(args.gb * 1e9))
            mix = work / "mix"
            run_mix(Mixture.model_validate({"shard_bytes": "64MB", "sources": [
                {"name": "s", "path": str(work / "src" / "src00"), "repeat": 1}]}), mix)
            nbytes = sum(f.stat().st_size for f in (mix / "data").glob("*.parquet"))
            api = HfApi()
            times: dict[str, list[float]] = {"upload_folder": [], "docsynth push": [], "push, 4 a commit": []}
            again = []
            for i in range(args.repeat):
                api.create_repo(f"bench/plain{i}", repo_type="dataset")
                t0 = time.perf_counter()
                api.upload_folder(folder_path=str(mix), repo_id=f"bench/plain{i}", repo_type="dataset",
                                  allow_patterns=["data/*.parquet", "README.md"])
                times["upload_folder"].append(time.perf_counter() - t0)
                hub.lfs.clear()  # the next variant uploads every object again, as a first push would
                t0 = time.perf_counter()
                push(mix, f"bench/ours{i}", PushOptions())
                times["docsynth push"].append(time.perf_counter() - t0)
                hub.lfs.clear()
                t0 = time.perf_counter()
                push(mix, f"bench/four{i}", PushOptions(commit_files=4))
                times["push, 4 a commit"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                s = push(mix, f"bench/ours{i}", PushOptions())
                again.append(time.perf_counter() - t0)
                assert not s.uploads and not s.commits
                hub.lfs.clear()
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{nbytes / 1e9:.2f} GB in {len(list((mix / 'data').glob('*.parquet')))} shards; medians of {args.repeat}")
            for k, v in med.items():
                print(f"  {k:17s} {nbytes / 1e6 / v:8.1f} MB/s  ({v:.2f} s)")
            print(f"docsynth / upload_folder: {med['upload_folder'] / med['docsynth push']:.2f} (with 4 shards a commit: "
                  f"{med['upload_folder'] / med['push, 4 a commit']:.2f}); "
                  f"an unchanged second push: {statistics.median(again):.2f} s, nothing sent")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
