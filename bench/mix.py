"""Benchmark of `docsynth mix` on 55 Cauldron-style sources against (a) a plain pyarrow
read-and-write of the same bytes (the ceiling: no selection, no shuffle) and (b) what users write
by hand with `datasets`: load_dataset per source, interleave_datasets(probabilities=...), then a
sharded to_parquet.

    .venv/bin/python bench/mix.py [--gb 2] [--repeat 3] [--double] [--no-datasets]

The sources hold real noise JPEGs (about 130 KB each, incompressible like photos and scans), 1-2
images and 1-3 QA turns per row, in parquet written the way `datasets` writes image data (row
groups of 100 rows, snappy). The mixture asks each source for between 0.5x and 1.5x its rows, for
a total equal to the rows of all sources, so about as many bytes come out as go in. Each variant
runs in its own process (for its peak RSS, from wait4) after the sources are in the page cache.
Prints the median MB/s (bytes written / s) and peak RSS of each variant, and the ratios
docsynth / pyarrow ceiling and docsynth / datasets. `--double` also mixes sources twice as big,
to show that peak RSS stays flat when the input doubles.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOURCES = 55
SHARD_BYTES = 256_000_000


def make_sources(root: Path, total_bytes: int) -> dict:
    """55 sources of different sizes adding up to about total_bytes; returns {name: rows}."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import simplejpeg

    from docsynth.dataset.cauldron import SCHEMA

    rng = np.random.default_rng(0)
    pool = [simplejpeg.encode_jpeg(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8), quality=92) for _ in range(512)]
    mean = sum(map(len, pool)) / len(pool) * 1.5  # 1-2 images per row
    shares = rng.uniform(0.2, 1.8, SOURCES)
    rows = np.maximum(20, (shares / shares.sum() * total_bytes / mean).astype(int))
    sizes = {}
    for i, n in enumerate(rows):
        name = f"src{i:02d}"
        d = root / name / "data"
        d.mkdir(parents=True)
        files = 1 + int(n) // 2000
        per = -(-int(n) // files)
        for f in range(files):
            batch = []
            for r in range(f * per, min(int(n), (f + 1) * per)):
                k = 1 + (r % 2)
                batch.append({"images": [{"bytes": pool[(r * 7 + j + i) % 512], "path": None} for j in range(k)],
                              "texts": [{"user": f"{name}/{r} question {t}?", "assistant": f"answer {t} " * 8,
                                         "source": name} for t in range(1 + r % 3)]})
            pq.write_table(pa.Table.from_pylist(batch, schema=SCHEMA), d / f"train-{f:05d}-of-{files:05d}.parquet",
                           row_group_size=100)
        sizes[name] = int(n)
    return sizes


def mixture(root: Path, sizes: dict) -> dict:
    import numpy as np
    factor = np.random.default_rng(1).uniform(0.5, 1.5, len(sizes))
    return {"name": "bench", "seed": 0, "total": sum(sizes.values()), "shard_bytes": SHARD_BYTES, "sources": [
        {"name": name, "path": str(root / name), "weight": float(n * f)} for (name, n), f in zip(sizes.items(), factor)]}


def source_files(root: Path) -> list[list[Path]]:
    return [sorted((d / "data").glob("*.parquet")) for d in sorted(root.iterdir()) if d.is_dir()]


# ----- the variants, each run in a child process -----------------------------------------------
def run_pyarrow(root: Path, out: Path, _m: dict) -> int:
    import pyarrow.parquet as pq

    from docsynth.dataset.cauldron import SCHEMA, WRITE_OPTIONS
    out.mkdir(parents=True)
    shard, size, w = 0, 0, None
    for files in source_files(root):
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=100):
                if w is None:
                    w = pq.ParquetWriter(out / f"train-{shard:05d}.parquet", SCHEMA, **WRITE_OPTIONS)
                w.write_batch(batch)
                size += batch.nbytes
                if size >= SHARD_BYTES:
                    w.close()
                    w, shard, size = None, shard + 1, 0
    if w is not None:
        w.close()
    return sum(p.stat().st_size for p in out.iterdir())


def run_datasets(root: Path, out: Path, m: dict) -> int:
    import datasets
    datasets.disable_progress_bars()
    cache = out.parent / (out.name + "-cache")
    parts = [datasets.load_dataset("parquet", data_files=[str(f) for f in files], split="train", cache_dir=str(cache))
             for files in source_files(root)]
    weights = [s["weight"] for s in m["sources"]]
    mixed = datasets.interleave_datasets(parts, probabilities=[w / sum(weights) for w in weights], seed=0,
                                         stopping_strategy="all_exhausted")
    mixed = mixed.select(range(m["total"]))  # as many rows as the mixture asks for (all_exhausted gives more)
    n = max(1, round(sum(p.data.nbytes for p in parts) / SHARD_BYTES))
    out.mkdir(parents=True)
    for i in range(n):
        mixed.shard(n, i, contiguous=True).to_parquet(str(out / f"train-{i:05d}.parquet"))
    size = sum(p.stat().st_size for p in out.iterdir())
    shutil.rmtree(cache, ignore_errors=True)
    return size


def run_docsynth(root: Path, out: Path, m: dict) -> int:
    from docsynth.mixing.mixer import run_mix
    from docsynth.config.mixture import Mixture
    return run_mix(Mixture.model_validate(m), out).bytes


def run_docsynth_shm(root: Path, out: Path, m: dict) -> int:
    """docsynth with its spill in /dev/shm (--spill-dir): what the disk costs (on another file
    system than OUT, shards go to new files instead of being written over spill files)."""
    from docsynth.mixing.mixer import run_mix
    from docsynth.config.mixture import Mixture
    return run_mix(Mixture.model_validate(m), out, spill_dir=Path("/dev/shm")).bytes


VARIANTS = {"pyarrow": run_pyarrow, "datasets": run_datasets, "docsynth": run_docsynth, "docsynth-shm": run_docsynth_shm}


# pandas: pyarrow imports it (0.2-0.5 s) on the first pa.array() of numpy data, which docsynth
# makes and the plain pyarrow copy does not; datasets imports it at once.
IMPORTS = {"pyarrow": ["pyarrow.parquet"], "datasets": ["datasets", "pyarrow.parquet"],
           "docsynth": ["docsynth.mixing.mixer", "docsynth.config.mixture", "pandas"],
           "docsynth-shm": ["docsynth.mixing.mixer", "docsynth.config.mixture", "pandas"]}


def child(args) -> None:
    import importlib
    for name in IMPORTS[args.child]:  # import time is not the work being compared
        importlib.import_module(name)
    m = json.loads(Path(args.mixture).read_text())
    import resource
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    written = VARIANTS[args.child](Path(args.sources), Path(args.out), m)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime  # all threads, user + system
    print(json.dumps({"seconds": time.perf_counter() - t0, "bytes": written, "cpu": cpu}))


def measure(variant: str, sources: Path, mix_file: Path, work: Path) -> dict:
    out = work / f"out-{variant}"
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen([sys.executable, __file__, "--child", variant, "--sources", str(sources), "--out", str(out),
                          "--mixture", str(mix_file)], stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    res = json.loads(p.stdout.read())
    if status:
        raise SystemExit(f"{variant} failed")
    shutil.rmtree(out, ignore_errors=True)
    return {**res, "rss_mb": usage.ru_maxrss / 1024, "mb_s": res["bytes"] / 1e6 / res["seconds"]}


def recycle_pages(work: Path, nbytes: int) -> None:
    """Write and delete a scratch file of nbytes, then sync: on this VM a page the guest has not
    touched lately is slow to get, and a run that follows one which freed many pages writes
    faster than one that follows a small run. With this before every run, each variant starts
    with the same supply of recycled pages and no dirty ones (run order no longer decides)."""
    chunk = b"\0" * (64 << 20)
    scratch = work / "scratch"
    with open(scratch, "wb") as f:
        for _ in range(max(1, nbytes // len(chunk))):
            f.write(chunk)
    scratch.unlink()
    os.sync()


def warm(sources: Path) -> int:
    n = 0
    for files in source_files(sources):
        for f in files:
            n += len(f.read_bytes())
    return n


def bench(gb: float, repeat: int, variants: list[str], work: Path) -> dict:
    sources = work / f"sources-{gb:g}gb"
    t0 = time.perf_counter()
    sizes = make_sources(sources, int(gb * 1e9))
    mix_file = work / f"mixture-{gb:g}gb.json"
    mix_file.write_text(json.dumps(mixture(sources, sizes)))
    nbytes = warm(sources)
    print(f"\n{SOURCES} sources, {sum(sizes.values()):,} rows, {nbytes / 1e9:.2f} GB of parquet "
          f"(made in {time.perf_counter() - t0:.0f} s)", flush=True)
    runs_of: dict[str, list] = {v: [] for v in variants}
    for _ in range(repeat):  # round robin, so a noisy spell of the shared disk hits every variant
        for v in variants:
            recycle_pages(work, 3 * nbytes)
            runs_of[v].append(measure(v, sources, mix_file, work))
    results = {}
    for v, runs in runs_of.items():
        results[v] = {"mb_s": statistics.median(r["mb_s"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs),
                      "seconds": statistics.median(r["seconds"] for r in runs), "gb_out": runs[0]["bytes"] / 1e9,
                      "cpu": statistics.median(r["cpu"] for r in runs)}
        r = results[v]
        print(f"  {v:9s} {r['mb_s']:8.1f} MB/s  median {r['seconds']:6.1f} s  CPU {r['cpu']:5.1f} s  {r['gb_out']:.2f} GB out  "
              f"peak RSS {r['rss_mb']:7.0f} MB   (runs: {', '.join(format(x['mb_s'], '.0f') for x in runs)} MB/s)", flush=True)
    shutil.rmtree(sources)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--double", action="store_true", help="also run docsynth on twice the input (flat RSS)")
    ap.add_argument("--no-datasets", action="store_true", help="leave out the datasets baseline (slow)")
    ap.add_argument("--shm", action="store_true", help="also run docsynth with its spill in /dev/shm")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    ap.add_argument("--child", choices=list(VARIANTS))
    ap.add_argument("--sources")
    ap.add_argument("--out")
    ap.add_argument("--mixture")
    args = ap.parse_args()
    if args.child:
        return child(args)
    work = Path(tempfile.mkdtemp(prefix="docsynth-bench-mix-", dir=args.work))
    try:
        variants = ["pyarrow", "docsynth"] + ([] if args.no_datasets else ["datasets"])
        if args.shm:
            variants.append("docsynth-shm")
        r = bench(args.gb, args.repeat, variants, work)
        print(f"\ndocsynth / pyarrow ceiling: {r['docsynth']['mb_s'] / r['pyarrow']['mb_s']:.2f}  (target >= 0.5)")
        if "datasets" in r:
            print(f"docsynth / datasets:        {r['docsynth']['mb_s'] / r['datasets']['mb_s']:.2f}  (target >= 2)")
        print(f"docsynth peak RSS:          {r['docsynth']['rss_mb']:.0f} MB  (target < 1024)")
        if "docsynth-shm" in r:
            print(f"docsynth, spill in /dev/shm / pyarrow ceiling: {r['docsynth-shm']['mb_s'] / r['pyarrow']['mb_s']:.2f}")
        if args.double:
            d = bench(args.gb * 2, args.repeat, ["docsynth"], work)
            print(f"docsynth peak RSS at {args.gb * 2:g} GB: {d['docsynth']['rss_mb']:.0f} MB "
                  f"(x{d['docsynth']['rss_mb'] / r['docsynth']['rss_mb']:.2f} for x2 the input); "
                  f"{d['docsynth']['mb_s']:.1f} MB/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
