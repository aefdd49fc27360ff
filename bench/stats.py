"""Benchmark of `docsynth stats` against what a plain script computes with pyarrow and PIL on the
same dataset (counts, turn and image counts, question/answer lengths, image sizes), in one process.

    .venv/bin/python bench/stats.py [--gb 0.5] [--repeat 3]

The dataset is one Cauldron source of noise JPEGs (bench/mix.py's maker). Prints median MB/s of
each and the ratio docsynth / plain.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mix import make_sources  # noqa: E402


def plain(path: Path) -> tuple:
    """What a user writes: read every row group, count in Python, open each image with PIL for its size."""
    import pyarrow.parquet as pq
    from PIL import Image
    samples = pairs = images = 0
    q_chars = a_chars = 0
    sides = []
    for f in sorted((path / "data").glob("*.parquet")):
        pf = pq.ParquetFile(f)
        for g in range(pf.num_row_groups):
            for row in pf.read_row_group(g).to_pylist():
                samples += 1
                pairs += len(row["texts"])
                q_chars += sum(len(t["user"]) for t in row["texts"])
                a_chars += sum(len(t["assistant"]) for t in row["texts"])
                for im in row["images"]:
                    images += 1
                    with Image.open(io.BytesIO(im["bytes"])) as x:
                        sides.append(max(x.size))
    return samples, pairs, images, q_chars, a_chars, sum(sides)


def ours(path: Path) -> tuple:
    from docsynth.dataset.stats import dataset_stats
    s = dataset_stats(path)
    return (s.samples, s.pairs, s.images, int(s.question_chars.total), int(s.answer_chars.total), int(s.image_side.total))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docsynth-bench-stats-"))
    try:
        import bench.mix as bm
        bm.SOURCES = 1
        make_sources(work, int(args.gb * 1e9))
        ds = work / "src00"
        nbytes = sum(f.stat().st_size for f in (ds / "data").glob("*.parquet"))
        times: dict[str, list[float]] = {"plain": [], "docsynth": []}
        results = {}
        for _ in range(args.repeat):
            for name, fn in (("plain", plain), ("docsynth", ours)):
                t0 = time.perf_counter()
                results[name] = fn(ds)
                times[name].append(time.perf_counter() - t0)
        assert results["plain"] == results["docsynth"], results  # the same figures
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{nbytes / 1e9:.2f} GB, {results['plain'][0]:,} samples, {results['plain'][2]:,} images; medians of {args.repeat}")
        for k in med:
            print(f"  {k:9s} {nbytes / 1e6 / med[k]:8.1f} MB/s  ({med[k]:.2f} s)")
        print(f"docsynth / plain: {med['plain'] / med['docsynth']:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
