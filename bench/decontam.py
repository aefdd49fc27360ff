"""Benchmark of decontamination: what hashing costs beside ingest, how fast lookups are, how much
memory the index takes, and how often it is right.

    .venv/bin/python bench/decontam.py [--pages 120] [--stored 1000000] [--repeat 3] [--json]

In one process, medians over --repeat runs (these machines are shared and noisy):
1. hashing cost per page: docsynth ingest (workers 1, ocr never; it hashes every page) of about
   --pages pages, synthetic ones of many layouts (tests/pages.py), bench/ingest.py's
   born-digital samples, and 6 of its scanned documents (OCR), against the hashing ingest does
   per page (docsynth.hashing.phash.pixels_hash on the rendered pixels). Reported as
   hashing's share of the rest of ingest (target <= 10 %).
2. lookups against --stored random 64-bit hashes: a brute-force scan (numpy XOR + popcount, the
   plain baseline) against the multi-index table (docsynth.hashing.hamming) at the default
   max_distance, in lookups per second, and their ratio; the build time; the table's bytes
   and the peak memory of building it (tracemalloc).
3. text lookups: questions against an index of 100,000 evaluation questions (docsynth.hashing.ngrams).
4. right and wrong: 7 altered copies (JPEG q60, 0.5x, 1.7x, 3 % crop, greyscale, 72 and 200 dpi)
   of --pages synthetic pages looked up among 2,000 distinct synthetic pages plus the originals:
   the share found, and the false hits of distinct pages, with the 64-bit hash alone and
   confirmed by the 256-bit one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pymupdf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsynth.config.decontam import ImageMatch, TextMatch  # noqa: E402
from docsynth.hashing.hamming import HammingIndex  # noqa: E402
from docsynth.hashing.ngrams import TextIndex, ngram_hashes  # noqa: E402
from docsynth.hashing.phash import fine_distances, image_hash, pixels_hash  # noqa: E402
from docsynth.config.recipe import Recipe  # noqa: E402
from docsynth.executors.local import run_ingest  # noqa: E402
from tests.dataset.decontam_data import ALTERATIONS, altered, render  # noqa: E402
from tests.pages import synthetic_pdf, word  # noqa: E402


def hashing_share(pages: int, repeat: int) -> dict:
    """Ingest per page (it hashes every page now) and hashing per page, on two corpora: synthetic
    pages of many layouts (vector text, cheap to render) and bench/ingest.py's born-digital
    samples; the share is hashing over the rest of ingest."""
    from bench.ingest import make_corpus

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic"
        synthetic.mkdir()
        for i in range(pages // 4):
            (synthetic / f"d{i}.pdf").write_bytes(synthetic_pdf(4, seed=1000 + i))
        samples = Path(tmp) / "samples"
        make_corpus(samples, max(1, pages // 2))  # about 2 pages a document
        scanned = Path(tmp) / "scanned"
        make_corpus(scanned, 6, scanned=True)  # OCR: a page costs seconds, 6 documents are enough
        for name, docs in (("synthetic", synthetic), ("samples", samples), ("scanned", scanned)):
            ingest_s, hash_s = [], []
            for r in range(repeat):
                out_dir = Path(tmp) / f"{name}{r}"
                ocr = "auto" if name == "scanned" else "never"
                recipe = Recipe.model_validate({"ingest": {"workers": 1, "ocr": {"mode": ocr}},
                                                "inputs": {"paths": [str(docs)]}})
                t0 = time.perf_counter()
                s = run_ingest(recipe, ROOT, out_dir)
                ingest_s.append((time.perf_counter() - t0) / s.pages)
                # what ingest adds per page: pixels_hash of the rendered page (as ingest/pdf.py
                # renders it: RGB at 150 dpi), timed alone
                took = []
                for f in sorted(docs.glob("*.pdf")):
                    for page in pymupdf.open(f):
                        pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csRGB, alpha=False)
                        view = np.frombuffer(pix.samples_mv, dtype=np.uint8).reshape(pix.height, pix.stride)
                        rgb = view[:, : pix.width * 3].reshape(pix.height, pix.width, 3)
                        t0 = time.perf_counter()
                        pixels_hash(rgb)
                        took.append(time.perf_counter() - t0)
                        del view, rgb
                hash_s.append(sum(took) / len(took))  # per page, as ingest's figure
            i, h = statistics.median(ingest_s), statistics.median(hash_s)
            out[name] = {"pages": s.pages, "ingest_ms_per_page": round(i * 1000, 2), "hash_ms_per_page": round(h * 1000, 2),
                         "share_of_ingest": round(h / (i - h), 4)}
    return out


def lookups(stored: int, repeat: int) -> dict:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, stored, dtype=np.int64).astype(np.uint64) << np.uint64(1)
    hashes |= rng.integers(0, 2, stored).astype(np.uint64)
    r = ImageMatch().max_distance
    queries = hashes[:2000].copy()  # half near copies (r bits flipped), half random
    for i in range(1000):
        for b in rng.choice(64, r, replace=False):
            queries[i] ^= np.uint64(1) << np.uint64(int(b))
    queries[1000:] = rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64)
    tracemalloc.start()
    t0 = time.perf_counter()
    index = HammingIndex.build(hashes)
    build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    table = sum(a.nbytes for a in (index.hashes, index.ids, index.order, index.starts, index.table))
    scan, mih = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for q in queries[::20]:  # the scan is slow: 100 queries
            np.flatnonzero(np.bitwise_count(hashes ^ q) <= r)
        scan.append(100 / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        qi, _, _ = index.near(queries, r)
        mih.append(len(queries) / (time.perf_counter() - t0))
    found = len(set(qi.tolist()) & set(range(1000)))
    return {"stored": stored, "max_distance": r, "scan_lookups_per_s": round(statistics.median(scan)),
            "index_lookups_per_s": round(statistics.median(mih)),
            "ratio": round(statistics.median(mih) / statistics.median(scan), 2), "near_copies_found": f"{found}/1000",
            "build_s": round(build, 2), "index_mb": round(table / 1e6, 1), "build_peak_mb": round(peak / 1e6, 1)}


def text_lookups(repeat: int) -> dict:
    rng = random.Random(0)
    n = TextMatch().ngram
    shapes = ["what was the {} {} of the {} in {}", "which {} approved the {} {} for {}", "how many {} {} did the {} record in {}"]
    question = lambda: rng.choice(shapes).format(*(word(rng) for _ in range(3)), rng.randint(1990, 2030))  # noqa: E731
    t0 = time.perf_counter()
    index = TextIndex.build([ngram_hashes(question(), n) for _ in range(100_000)])
    build = time.perf_counter() - t0
    queries = [ngram_hashes(question(), n) for _ in range(2000)]
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for q in queries:
            index.similar(q, TextMatch().question)
        rates.append(len(queries) / (time.perf_counter() - t0))
    return {"stored_questions": 100_000, "build_s": round(build, 2), "lookups_per_s": round(statistics.median(rates))}


def right_and_wrong(pages: int) -> dict:
    doc = pymupdf.open(stream=synthetic_pdf(pages, seed=5))
    others = pymupdf.open(stream=synthetic_pdf(2000, seed=6))
    stored = [image_hash(render(p, 100)) for p in others] + [image_hash(render(p)) for p in doc]
    index = HammingIndex.build(np.array([h[0] for h in stored], dtype=np.uint64))
    fine = np.stack([h[1] for h in stored])
    im = ImageMatch()
    own = {i: len(others) + i for i in range(len(doc))}
    found = {k: 0 for k in ALTERATIONS}
    for i, page in enumerate(doc):
        hs = [image_hash(altered(page, k)) for k in ALTERATIONS]
        qi, ids, _ = index.near(np.array([h[0] for h in hs], dtype=np.uint64), im.max_distance)
        ok = fine_distances(np.stack([h[1] for h in hs])[qi], fine[ids]) <= im.confirm_distance
        for q in set(qi[ok & (ids == own[i])].tolist()):
            found[ALTERATIONS[q]] += 1
    # distinct pages: every original against the 2,000 others
    qi, ids, _ = index.near(np.array([h[0] for h in stored[len(others):]], dtype=np.uint64), im.max_distance)
    distinct = ids < len(others)
    confirmed = distinct & (fine_distances(fine[len(others) + qi], fine[ids]) <= im.confirm_distance)
    total = 7 * len(doc)
    return {"planted": total, "found_share": round(sum(found.values()) / total, 4), "found_by_alteration": found,
            "distinct_pairs": len(doc) * len(others), "false_hits_64bit_alone": int(distinct.sum()),
            "false_hits_confirmed": int(confirmed.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--stored", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    report = {"hashing": hashing_share(a.pages, a.repeat), "lookups": lookups(a.stored, a.repeat),
              "text": text_lookups(a.repeat), "accuracy": right_and_wrong(a.pages)}
    if a.json:
        print(json.dumps(report, indent=1))
        return
    h, lk, t, acc = report["hashing"], report["lookups"], report["text"], report["accuracy"]
    for name, x in h.items():
        print(f"hashing ({name}, {x['pages']} pages): {x['hash_ms_per_page']} ms/page beside ingest's "
              f"{x['ingest_ms_per_page']} ms/page (hashing included): {x['share_of_ingest']:.1%} (target <= 10 %)")
    print(f"lookups against {lk['stored']:,} hashes (distance <= {lk['max_distance']}): scan {lk['scan_lookups_per_s']:,}/s, "
          f"index {lk['index_lookups_per_s']:,}/s, ratio {lk['ratio']}; near copies found {lk['near_copies_found']}; "
          f"build {lk['build_s']} s, {lk['index_mb']} MB, peak {lk['build_peak_mb']} MB")
    print(f"text: {t['lookups_per_s']:,} question lookups/s against {t['stored_questions']:,} (built in {t['build_s']} s)")
    print(f"planted copies found: {acc['found_share']:.2%} of {acc['planted']} {acc['found_by_alteration']}; false hits among "
          f"{acc['distinct_pairs']:,} distinct pairs: {acc['false_hits_64bit_alone']} (64-bit alone), "
          f"{acc['false_hits_confirmed']} (confirmed)")


if __name__ == "__main__":
    main()
