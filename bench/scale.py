"""How docsynth's own cost grows with the work: wall time, seconds per page, peak memory and files
written, per stage and for `docsynth run`, on synthetic corpora of growing size.

    .venv/bin/python bench/scale.py [--pages 1000,10000,100000] [--shard-rows 1000,20000] [--ray]
                                    [--stages ingest,generate,write,run] [--dpi 50]

The model is a model-free OpenAI-compatible server on loopback (tests.generate.test_openai_backend's
StandIn, as in the tests): it answers each request at once with a pair read off the page's own
text, so only docsynth's cost shows. The corpora are 2-page born-digital PDFs, generated (never
committed) under a scratch folder. Each stage is the CLI in a fresh process, timed, with its
process tree sampled every 0.1 s: peak RSS of the driver (the docsynth process itself) and of the
whole tree (the driver plus its workers, summed at each sample), and the files in its folder
(count and bytes; the stages share one folder, so each adds to the last). Then, per quantity, its growth
from the smallest corpus to the largest as a ratio (1.00: flat).

The writer holds one parquet row group (write.row_group_bytes, 32 MB by default) and no more. At
the bench's 50 dpi a page image is about 5 kB, so a 1,000-page dataset (5 MB) would not fill
one, and its memory would seem to grow from 1k to 10k pages for that reason alone; the recipe
sets row_group_bytes to 2 MB so that the smallest corpus fills row groups too, as 1,000 real
150 dpi pages (0.4 MB a row) fill the default one.

`--shard-rows` repeats the write stage at each of those write.shard_rows on the largest corpus:
the writer's memory should not depend on it. `--ray` runs `docsynth run --executor ray` on a
local Ray too (its driver is the docsynth process; Ray's own processes are counted in the tree).

The figures of 2026-12-07 are in bench/README.md, and docs/scale.md turns them into the cost of
a Docmatix-size run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pymupdf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.generate.test_openai_backend import StandIn, ok  # noqa: E402

FACT = re.compile(r"valve (V\d+) is checked every (\d+) days")
SAMPLE_S = 0.1


def answer(n: int, body: dict):
    """A pair about the first fact in the request's text (grounded), at once."""
    text = " ".join(m["content"] if isinstance(m["content"], str) else
                    " ".join(p.get("text", "") for p in m["content"]) for m in body["messages"])
    m = FACT.search(text)
    pair = ({"question": f"How often is valve {m[1]} checked?", "answer": f"every {m[2]} days"} if m else
            {"question": "What is this page about?", "answer": "valves"})
    return ok(json.dumps([pair]))


def make_corpus(d: Path, pages: int) -> None:
    """pages/2 distinct 2-page PDFs (made once per size, kept for the next run of the bench)."""
    if (d / ".complete").exists():
        return
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for i in range(pages // 2):
        doc = pymupdf.open()
        for p in range(2):
            page = doc.new_page(width=420, height=595)
            page.insert_textbox(pymupdf.Rect(40, 40, 380, 555),
                                f"Maintenance log {i}, sheet {p + 1}. The valve V{i}-{p} is checked every "
                                f"{(i * 7 + p) % 90 + 2} days. The pump beside it was replaced in {1990 + i % 30}.",
                                fontsize=11)
        sub = d / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        doc.save(sub / f"log{i:06d}.pdf", garbage=3, deflate=True)
    (d / ".complete").touch()


def recipe(path: Path, corpus: Path, url: str, dpi: int, shard_rows: int = 5000, ray: bool = False,
           row_group_bytes: int = 2_000_000) -> Path:
    path.write_text(json.dumps({
        "name": "bench-scale", "inputs": {"paths": [str(corpus)]},
        "ingest": {"ocr": {"mode": "never"}, "dpi": dpi},
        "generate": {"backend": "openai", "model": "stand-in", "context_tokens": 4096, "guided_json": False,
                     "pairs_per_page": 1, "max_pages_per_sample": 1, "batch_samples": 256,
                     "openai": {"base_url": url, "concurrency": 64}},
        "write": {"shard_rows": shard_rows, "row_group_bytes": row_group_bytes},
        **({"ray": {"engine_gpus": 0, "object_store_memory": 300_000_000}} if ray else {})}))
    return path


def measured(cmd: list[str], env: dict) -> dict:
    """Run cmd; its wall time, the peak RSS of its own process and of its whole tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"driver": 0, "tree": 0}
    done = threading.Event()

    def sample() -> None:
        try:
            me = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                own = me.memory_info().rss
                kids = 0
                for c in me.children(recursive=True):
                    try:
                        kids += c.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            peak["driver"] = max(peak["driver"], own)
            peak["tree"] = max(peak["tree"], own + kids)
            done.wait(SAMPLE_S)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate()
    done.set()
    t.join()
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd[2:5])} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "driver_mb": peak["driver"] / 1e6, "tree_mb": peak["tree"] / 1e6,
            "summary": json.loads(out) if out.strip() else {}}


def files(d: Path) -> tuple[int, int]:
    """Files under d, and their bytes."""
    n = size = 0
    for root, _, fs in os.walk(d):
        for f in fs:
            n += 1
            try:
                size += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return n, size


def stage_cmds(r: Path, run: Path, stages: list[str], ray: bool) -> list[tuple[str, list[str], Path]]:
    cli = [sys.executable, "-m", "docsynth.cli"]
    out = []
    for s in stages:
        if s == "ingest":
            out.append(("ingest", [*cli, "ingest", "--recipe", str(r), "--out", str(run / "s"), "--json"], run / "s"))
        elif s == "generate":
            out.append(("generate", [*cli, "generate", str(run / "s"), "--recipe", str(r), "--out", str(run / "s"),
                                     "--json"], run / "s"))
        elif s == "write":
            out.append(("write", [*cli, "write", str(run / "s"), "--recipe", str(r), "--out", str(run / "s" / "dataset"),
                                  "--json"], run / "s"))
        elif s == "run":
            out.append(("run", [*cli, "run", str(r), "--out", str(run / "r"), "--json"], run / "r"))
    if ray:
        out.append(("run --ray", [*cli, "run", str(r), "--out", str(run / "ray"), "--json", "--executor", "ray"],
                    run / "ray"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", default="1000,10000,100000")
    ap.add_argument("--stages", default="ingest,generate,write,run")
    ap.add_argument("--shard-rows", default="1000,20000")
    ap.add_argument("--dpi", type=int, default=50, help="render dpi (docsynth's cost per page, not the image's)")
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "docsynth-bench-scale"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.pages.split(",")]
    scratch = Path(args.scratch)
    server = StandIn(answer)
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": ""}
    rows: dict[int, dict[str, dict]] = {}
    try:
        for n in sizes:
            corpus = scratch / f"corpus-{n}"
            t0 = time.perf_counter()
            make_corpus(corpus, n)
            print(f"corpus of {n:,} pages ready ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            run = scratch / f"run-{n}"
            shutil.rmtree(run, ignore_errors=True)
            r = recipe(scratch / f"r-{n}.json", corpus, server.url, args.dpi, ray=args.ray)
            rows[n] = {}
            for name, cmd, where in stage_cmds(r, run, args.stages.split(","), args.ray):
                m = measured(cmd, env)
                m["files"], m["bytes"] = files(where)
                m["s_per_page"] = m["wall"] / n
                rows[n][name] = m
                print(f"{n:>8,} pages  {name:<10} {m['wall']:8.1f} s  {m['s_per_page'] * 1000:7.2f} ms/page  "
                      f"driver {m['driver_mb']:7.0f} MB  tree {m['tree_mb']:7.0f} MB  files {m['files']:,} "
                      f"({m['bytes'] / n / 1e3:.1f} kB/page)",
                      flush=True)
            if n != sizes[-1]:
                shutil.rmtree(run, ignore_errors=True)
        report(rows, sizes)
        if args.shard_rows and "write" in args.stages:
            shard_rows(scratch, sizes[-1], [int(x) for x in args.shard_rows.split(",")], server.url, args.dpi, env)
    finally:
        server.close()


def report(rows: dict[int, dict[str, dict]], sizes: list[int]) -> None:
    lo, hi = sizes[0], sizes[-1]
    mid = sizes[-2] if len(sizes) > 2 else lo
    print(f"\ngrowth, {lo:,} -> {hi:,} pages (1.00: flat; s/page from {mid:,})")
    print(f"{'stage':<10} {'driver RSS':>10} {'tree RSS':>10} {'s/page':>8} {'files/page':>11}")
    for name in rows[hi]:
        a, b, m = rows[lo][name], rows[hi][name], rows[mid][name]
        print(f"{name:<10} {b['driver_mb'] / a['driver_mb']:10.2f} {b['tree_mb'] / a['tree_mb']:10.2f} "
              f"{b['s_per_page'] / m['s_per_page']:8.2f} {b['files'] / hi:11.3f}")


def shard_rows(scratch: Path, n: int, settings: list[int], url: str, dpi: int, env: dict) -> None:
    """The write stage alone at each write.shard_rows, on the largest corpus's run."""
    run = scratch / f"run-{n}"
    if not (run / "s" / "candidates").is_dir():
        return
    print(f"\nwrite of {n:,} pages by write.shard_rows")
    base = None
    for k in settings:
        r = recipe(scratch / f"r-{n}-{k}.json", scratch / f"corpus-{n}", url, dpi, shard_rows=k)
        m = measured([sys.executable, "-m", "docsynth.cli", "write", str(run / "s"), "--recipe", str(r),
                      "--out", str(run / f"dataset-{k}"), "--json"], env)
        base = base or m
        print(f"shard_rows {k:>6,}: {m['wall']:7.1f} s  driver {m['driver_mb']:6.0f} MB "
              f"({m['driver_mb'] / base['driver_mb']:.2f}x)  tree {m['tree_mb']:6.0f} MB "
              f"({m['tree_mb'] / base['tree_mb']:.2f}x)  shards {m['summary'].get('shards')}", flush=True)


if __name__ == "__main__":
    main()
