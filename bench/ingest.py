"""Benchmark of `docsynth ingest` against plain single-process baselines, in one process.

    .venv/bin/python bench/ingest.py [--docs 600] [--scanned 12] [--repeat 3]
    .venv/bin/python bench/ingest.py --tar [--docs 600] [--repeat 3]

Prints, with medians over --repeat runs (these machines are shared and noisy):
1. born-digital corpus: pages/s of a plain loop (pymupdf render at 150 dpi + JPEG
   encode + text) vs docsynth ingest on all cores; ratio per core (target >= 0.9), for the
   whole run and at the margin (N minus N/2 docs: process start-up excluded).
2. scanned corpus: pages/s of plain tesseract on pre-rendered 300 dpi images (and on
   the very images docsynth gives tesseract) vs docsynth (ocr: auto, which also renders
   them); ratio per core (target >= 0.9).
3. born-digital with ocr: auto vs ocr: always; tesseract must never run in auto
   (target >= 20x faster).
4. peak RSS of the whole docsynth process tree for 10, 100 and 300 documents (flat).
6. blank pages (white, noisy blank scans, a page number alone) in ocr: auto, as before (each
   OCRed: ocr.blank_ink 0) vs now (rejected as `blank page` after a 50 dpi look; target >= 20x).
5. image formats at 150 dpi: encode ms/page, bytes/page and PSNR vs lossless, to
   justify the default (jpeg q90).
--layout alone: reading order (ingest.layout). On the journal corpus (tests/ingest/journals, eight
LaTeX classes, two columns; copies stamped to --docs documents at most) and on the born-digital
samples (mostly one column): the plain loop vs docsynth ingest with layout geometry and auto,
ratio per core; the share of pages auto gave the layout model; the model's cost per page; and the
column-order problems per page of each reader against the PDF's blocks (tests/ingest/columncheck.py).
--large alone: three born-digital documents of 160 pages each (--large-pages) (manuals, reports, filings: few
large PDFs): pages/s of the plain loop vs docsynth ingest at the default inputs (docs_per_task 8
would make one task of them; pages_per_task splits them into page ranges) and with splitting off,
ratio per core, and CPU seconds / wall (target >= 0.9 x cores); beside the same figures for
many small documents, and each corpus with one worker: docsynth's own cost per page against
the plain loop's on that corpus (its ratio per core is over 1 core), so that the rest of the
ratio per core is how well the cores are used (the "x one worker" column, target ~cores). The
ratio is each run's against the plain loop run just before it (the median of those): this
machine's speed drifts by 20 % within a minute, more than the effect.
--tar alone: the born-digital corpus as loose files vs the same documents in PDFA-style
WebDataset shards (KEY.pdf + KEY.json, 100 documents a shard), docsynth ingest of each,
alternately; pages/s and the ratio tar / loose (target >= 0.95).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docsynth.executors.local import run_ingest  # noqa: E402
from docsynth.config.recipe import Recipe  # noqa: E402

SAMPLES = ["two_column_article.pdf", "invoice.pdf", "table_report.pdf", "annual_report.pdf",
           "lettre_fr.pdf", "bericht_de.pdf"]


def make_corpus(d: Path, n: int, scanned: bool = False) -> int:
    """n distinct documents: the born-digital samples, each copy stamped with its number
    (so content hashes differ); scanned=True turns every page into a 200 dpi grey image."""
    d.mkdir(parents=True, exist_ok=True)
    pages = 0
    for i in range(n):
        src = pymupdf.open(ROOT / "sample_pdfs" / SAMPLES[i % len(SAMPLES)])
        for page in src:
            page.insert_text((54, page.rect.height - 20), f"Copy {i} - archive reference A-{1000 + i}", fontsize=8)
        if scanned:
            out = pymupdf.open()
            for page in src:
                pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
                out.new_page(width=page.rect.width, height=page.rect.height).insert_image(
                    page.rect, stream=pix.tobytes("jpeg", jpg_quality=80))
            src = out
        pages += src.page_count
        src.save(d / f"doc{i:04d}.pdf", garbage=3, deflate=True)
    return pages


def pil_jpeg(pix) -> bytes:
    """What a plain script does to get a JPEG quickly: Pillow (libjpeg-turbo), after a copy."""
    from PIL import Image

    buf = io.BytesIO()
    Image.frombuffer("RGB", (pix.width, pix.height), pix.samples_mv, "raw", "RGB", pix.stride, 1).save(
        buf, format="JPEG", quality=90)
    return buf.getvalue()


def baseline_born_digital(files: list[Path], fast: bool = True) -> int:
    """The plain loop: one process, pymupdf render + JPEG q90 + text, nothing else.
    fast=True encodes with Pillow (libjpeg-turbo), as docsynth does: the honest ceiling;
    fast=False uses pymupdf's own Pixmap.tobytes("jpeg"), what a first script would do."""
    n = 0
    for f in files:
        doc = pymupdf.open(f)
        for page in doc:
            pix = page.get_pixmap(dpi=150)
            if fast:
                pil_jpeg(pix)
            else:
                pix.tobytes("jpeg", jpg_quality=90)
            page.get_text()
            n += 1
    return n


def baseline_born_digital_parallel(files: list[Path], cores: int) -> int:
    """The plain loop in `cores` processes at once, each on its share of the files: what the
    hardware gives for perfectly parallel work (two busy cores clock lower than one)."""
    import multiprocessing as mp

    with mp.get_context("fork").Pool(cores) as pool:
        return sum(pool.map(baseline_born_digital, [files[i::cores] for i in range(cores)]))


def baseline_tesseract(images: list[Path]) -> int:
    """Plain tesseract (pytesseract) on pre-rendered 300 dpi page images, one process."""
    import pytesseract

    for img in images:
        pytesseract.image_to_string(str(img), lang="eng")
    return len(images)


def render_for_ocr(files: list[Path], d: Path, same_as_docsynth: bool) -> list[Path]:
    """Grey page images for tesseract: at 300 dpi, or at the resolution docsynth gives
    tesseract (a scan's own, if lower than ocr.dpi)."""
    from docsynth.ingest.ocr import ocr_dpi
    from docsynth.config.recipe import OcrConfig

    d.mkdir()
    out = []
    for f in files:
        for page in pymupdf.open(f):
            p = d / f"{f.stem}-{page.number}.pgm"
            dpi = ocr_dpi(page, OcrConfig()) if same_as_docsynth else 300
            page.get_pixmap(dpi=round(dpi), colorspace=pymupdf.csGRAY).save(p)
            out.append(p)
    return out


def docsynth_ingest(src: Path, out: Path, **ingest) -> tuple[float, object]:
    recipe = Recipe.model_validate({"inputs": {"paths": [str(src)], "docs_per_task": ingest.pop("docs_per_task", 4)},
                                   "ingest": ingest})
    t = time.perf_counter()
    s = run_ingest(recipe, Path("/"), out)
    return time.perf_counter() - t, s


def make_blank(d: Path, n: int) -> None:
    """n blank pages over n/4 documents: white, a noisy grey scan of white paper (JPEG), one with
    a page number alone, and one scan with a dark scanner edge."""
    import numpy as np
    from PIL import Image

    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(max(1, n // 4)):
        doc = pymupdf.open()
        doc.new_page()
        doc.new_page().insert_text((290, 800), str(i + 2), fontsize=10)
        for edge in (False, True):
            img = (245 + rng.normal(0, 6, (1100, 850))).clip(0, 255).astype(np.uint8)
            img[rng.random(img.shape) < 0.0003] = 30  # specks
            if edge:
                img[:, :30] = 40
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "JPEG", quality=60)
            page = doc.new_page()
            page.insert_image(page.rect, stream=buf.getvalue())
        doc.set_metadata({"title": f"blank {i}"})
        doc.save(d / f"blank{i:03d}.pdf")


def blank_pages(tmp: Path, args, report) -> None:
    src = tmp / "blank"
    make_blank(src, args.blank)
    before, now = [], []
    for r in range(args.repeat):
        t, s = docsynth_ingest(src, tmp / f"out-blank-ocr-{r}", docs_per_task=1, ocr={"mode": "auto", "blank_ink": 0})
        before.append(t)
        t, s = docsynth_ingest(src, tmp / f"out-blank-{r}", docs_per_task=1, ocr={"mode": "auto"})
        assert s.pages == 0 and s.reject_reasons.get("blank page") == 4 * (args.blank // 4), s
        now.append(t)
    b, m = statistics.median(before), statistics.median(now)
    report(f"\n6. blank pages, {4 * (args.blank // 4)} in ocr: auto: each OCRed (as before) {b:.2f} s, "
           f"detected and rejected as blank {m:.2f} s -> {b / m:.0f}x faster  (target >= 20x)")


def timed(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    r = fn(*args)
    return time.perf_counter() - t, r


class TreeRss:
    """Peak of the summed RSS of a process and all its descendants, polled from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()

    def _poll(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.02):
            parents, rss = {}, {}
            for p in Path("/proc").iterdir():
                if not p.name.isdigit():
                    continue
                try:
                    stat = (p / "stat").read_text().rsplit(")", 1)[1].split()
                    parents[int(p.name)] = int(stat[1])
                    rss[int(p.name)] = int((p / "statm").read_text().split()[1]) * page
                except (OSError, IndexError, ValueError):
                    continue
            tree, grew = {self.pid}, True
            while grew:
                new = {c for c, pp in parents.items() if pp in tree} - tree
                grew, tree = bool(new), tree | new
            self.peak = max(self.peak, sum(rss.get(p, 0) for p in tree))

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def peak_rss_of_cli(src: Path, out: Path) -> int:
    cmd = [sys.executable, "-m", "docsynth.cli", "ingest", str(src), "--out", str(out), "--ocr", "never", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mon = TreeRss(proc.pid)
    proc.wait()
    return mon.stop()


def image_formats(report) -> None:
    from PIL import Image

    doc = pymupdf.open(ROOT / "sample_pdfs" / "two_column_article.pdf")
    page = doc[0]
    pix = page.get_pixmap(dpi=150)
    raw = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    ref = raw.tobytes()

    def psnr(data: bytes) -> float:
        got = Image.open(io.BytesIO(data)).convert("RGB").tobytes()
        mse = sum((a - b) ** 2 for a, b in zip(ref[::7], got[::7])) / len(ref[::7])
        return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)

    from docsynth.ingest.pdf import encode

    encoders = {"jpeg q90 (default)": lambda: encode(pix, "jpeg", 90), "jpeg q75": lambda: encode(pix, "jpeg", 75),
                "png": lambda: encode(pix, "png", 0), "webp q90": lambda: encode(pix, "webp", 90),
                "Pillow jpeg q90": lambda: pil_jpeg(pix), "mupdf's jpeg q90": lambda: pix.tobytes("jpeg", jpg_quality=90)}
    report("\n5. image formats, 150 dpi A4 page (two_column_article p.1), median of 7 encodes")
    report(f"   {'format':20s} {'ms/page':>8s} {'KB/page':>8s} {'PSNR dB':>8s}")
    for name, enc in encoders.items():
        times = []
        for _ in range(7):
            t = time.perf_counter()
            data = enc()
            times.append(time.perf_counter() - t)
        report(f"   {name:20s} {statistics.median(times) * 1000:8.1f} {len(data) / 1024:8.0f} {psnr(data):8.1f}")


def tar_vs_loose(args) -> None:
    import json
    import tarfile

    tmp = Path(tempfile.mkdtemp(prefix="docsynth-bench-"))
    born = tmp / "born"
    pages = make_corpus(born, args.docs)
    shards = tmp / "shards"
    shards.mkdir()
    files = sorted(born.glob("*.pdf"))
    for i in range(0, len(files), 100):
        with tarfile.open(shards / f"pdfa-{i // 100:05d}.tar", "w") as tf:
            for f in files[i:i + 100]:
                tf.add(f, f"{f.stem}.pdf")
                meta = json.dumps({"url": f"https://example.org/{f.name}"}).encode()
                info = tarfile.TarInfo(f"{f.stem}.json")
                info.size = len(meta)
                tf.addfile(info, io.BytesIO(meta))
    cores = os.cpu_count() or 1
    loose, tar = [], []
    for r in range(args.repeat):
        t, s = docsynth_ingest(born, tmp / f"out-loose-{r}", ocr={"mode": "auto"})
        assert s.pages == pages, s
        loose.append(pages / t)
        t, s = docsynth_ingest(shards, tmp / f"out-tar-{r}", ocr={"mode": "auto"})
        assert s.pages == pages and s.rejects == 0, s
        tar.append(pages / t)
    lo, ta = statistics.median(loose), statistics.median(tar)
    print(f"tar shards vs loose files: {args.docs} docs, {pages} pages, {cores} workers, medians of {args.repeat}")
    print(f"   docsynth ingest, loose PDF files: {lo:7.1f} pages/s")
    print(f"   docsynth ingest, WebDataset tars: {ta:7.1f} pages/s   ratio {ta / lo:.3f}  (target >= 0.95)")


def make_large(d: Path, docs: int = 3, pages: int = 160) -> int:
    """docs born-digital documents of `pages` pages each: the samples' pages in turn, each stamped
    with its document and page number (so no two are the same)."""
    d.mkdir(parents=True, exist_ok=True)
    srcs = [pymupdf.open(ROOT / "sample_pdfs" / name) for name in SAMPLES]
    for i in range(docs):
        out = pymupdf.open()
        k = 0
        while out.page_count < pages:
            src = srcs[k % len(srcs)]
            out.insert_pdf(src, from_page=0, to_page=min(src.page_count, pages - out.page_count) - 1)
            k += 1
        for n, page in enumerate(out):
            page.insert_text((54, page.rect.height - 20), f"Manual {i}, page {n + 1}", fontsize=8)
        out.save(d / f"manual{i}.pdf", garbage=3, deflate=True)
    return docs * pages


def tree_cpu_s() -> float:
    """CPU seconds of this process and every descendant, with what each has reaped (the
    forkserver reaps the pool's workers)."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def large_documents(args) -> None:
    """--large: a few large PDFs, split into page ranges (or not), against many small ones."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="docsynth-bench-large-"))
    corpora = [("3 large PDFs", tmp / "large", make_large(tmp / "large", 3, args.large_pages)),
               ("many small PDFs", tmp / "small", make_corpus(tmp / "small", min(args.docs, 240)))]
    print(f"docsynth ingest of large documents: {cores} cores, pymupdf {pymupdf.VersionBind}, medians of "
          f"{args.repeat}", flush=True)
    for name, src, pages in corpora:
        files = sorted(src.glob("*.pdf"))
        # (inputs, ingest): one worker shows docsynth's own cost per page against the plain loop's
        # on this corpus, so that what is left of the ratio per core is the cores' use
        settings = {"page ranges (default)": ({}, {}), "whole documents": ({"pages_per_task": 10 ** 6}, {})} \
            if name.startswith("3") else {"default": ({}, {})}
        settings["one worker"] = ({}, {"workers": 1})
        base, rates, busy, tasks = [], {k: [] for k in settings}, {k: [] for k in settings}, {}
        ratios = {k: [] for k in settings}  # each run against the plain loop just before it
        for r in range(args.repeat):
            t, n = timed(baseline_born_digital, files)
            base.append(n / t)
            for j, (k, (inputs, ingest)) in enumerate(settings.items()):
                recipe = Recipe.model_validate({"inputs": {"paths": [str(src)], **inputs},
                                                "ingest": {"ocr": {"mode": "never"}, **ingest}})
                c0, t0 = tree_cpu_s(), time.perf_counter()
                s = run_ingest(recipe, Path("/"), tmp / f"out-{src.name}-{j}-{r}")
                wall = time.perf_counter() - t0
                assert s.pages == pages, s
                rates[k].append(pages / wall)
                ratios[k].append(pages / wall / (ingest.get("workers", cores) * base[-1]))
                busy[k].append((tree_cpu_s() - c0) / wall)
                tasks[k] = s.tasks
        b = statistics.median(base)
        print(f"\n{name}: {len(files)} documents, {pages} pages; plain loop (1 process) {b:.1f} pages/s")
        one = statistics.median(rates["one worker"])
        for k in settings:
            rate = statistics.median(rates[k])
            print(f"   docsynth ingest, {k}: {tasks[k]} tasks, {rate:6.1f} pages/s -> ratio per core "
                  f"{statistics.median(ratios[k]):.2f}; CPU s / wall {statistics.median(busy[k]):.2f} "
                  f"(target >= {0.9 * cores:.1f}); {rate / one:.2f}x one worker", flush=True)


def make_journals(d: Path, n: int) -> int:
    """n stamped copies of the journal corpus's papers (eight classes, two columns)."""
    d.mkdir(parents=True, exist_ok=True)
    papers = sorted((ROOT / "tests" / "ingest" / "journals").glob("*.pdf"))
    pages = 0
    for i in range(n):
        doc = pymupdf.open(papers[i % len(papers)])
        doc[0].insert_text((54, doc[0].rect.height - 12), f"Copy {i}", fontsize=6)
        pages += doc.page_count
        doc.save(d / f"paper{i:04d}.pdf", garbage=3, deflate=True)
    return pages


def reading_order(args) -> None:
    """--layout: what the reading order costs and how often auto calls the model."""
    from docsynth.config.recipe import IngestConfig

    os.environ["OMP_THREAD_LIMIT"] = "1"
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="docsynth-bench-layout-"))
    has_layout = "layout" in IngestConfig.model_fields  # an older docsynth, for the figures before
    if has_layout:
        from docsynth.ingest import layoutmodel
        from docsynth.ingest.pdf import layer_reading
        from tests.ingest.columncheck import problems
    print(f"docsynth reading order: {cores} cores, pymupdf {pymupdf.VersionBind}, ingest.layout "
          f"{'available' if has_layout else 'absent (an older docsynth)'}, layout model "
          f"{'installed' if has_layout and layoutmodel.available() else 'not installed'}, medians of {args.repeat}",
          flush=True)
    corpora = [("two-column journals", tmp / "journals", make_journals(tmp / "journals", min(args.docs, 64))),
               ("born-digital samples", tmp / "born", make_corpus(tmp / "born", min(args.docs, 240)))]
    modes = ["geometry", "auto"] if has_layout else [None]
    for name, src, pages in corpora:
        files = sorted(src.glob("*.pdf"))
        base, runs = [], {m: [] for m in modes}
        readers = {}
        for r in range(args.repeat):
            t, n = timed(baseline_born_digital, files)
            base.append(n / t)
            for m in modes:
                t, s = docsynth_ingest(src, tmp / f"out-{name[:3]}-{m}-{r}", ocr={"mode": "never"},
                                       **({"layout": m} if m else {}))
                runs[m].append(s.pages / t)
                readers[m] = getattr(s, "pages_by_reader", {})
        b = statistics.median(base)
        print(f"\n{name}: {len(files)} documents, {pages} pages; plain loop {b:.1f} pages/s", flush=True)
        for m in modes:
            rate = statistics.median(runs[m])
            model = readers[m].get("model", 0)
            print(f"   docsynth ingest, layout {m or '(none)'}: {rate:7.1f} pages/s -> ratio per core "
                  f"{rate / (cores * b):.2f}; pages to the model {model} of {pages} ({100 * model / pages:.1f} %)")
    if has_layout and layoutmodel.available():
        papers = sorted((ROOT / "tests" / "ingest" / "journals").glob("*.pdf"))
        for reader in ("geometry", "model"):
            t0, n, found = time.perf_counter(), 0, 0
            for paper in papers:
                with pymupdf.open(paper) as doc:
                    for page in doc:
                        found += len(problems(page, layer_reading(page, reader)[0]))
                        n += 1
            print(f"\n{reader} reader on the journal corpus: {1000 * (time.perf_counter() - t0) / n:.0f} ms a page "
                  f"(checks included), {found} column-order problems on {n} pages", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=600, help="born-digital documents (~1000 pages)")
    ap.add_argument("--scanned", type=int, default=12, help="scanned documents")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blank", type=int, default=48, help="blank pages")
    ap.add_argument("--tar", action="store_true", help="only: ingest from tar shards vs loose files")
    ap.add_argument("--large", action="store_true", help="only: a few large PDFs (page-range tasks)")
    ap.add_argument("--large-pages", type=int, default=160, help="pages of each large PDF (--large)")
    ap.add_argument("--layout", action="store_true", help="only: reading order, geometry and the layout model")
    args = ap.parse_args()
    if args.tar:
        return tar_vs_loose(args)
    if args.large:
        return large_documents(args)
    if args.layout:
        return reading_order(args)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    cores = os.cpu_count() or 1
    report = lambda s: print(s, flush=True)  # noqa: E731
    tmp = Path(tempfile.mkdtemp(prefix="docsynth-bench-"))
    report(f"docsynth ingest benchmark: {cores} cores, pymupdf {pymupdf.VersionBind}, medians of {args.repeat}")

    born = tmp / "born"
    pages = make_corpus(born, args.docs)
    # the scanned corpus is made with docs_per_task=1 below: one task per document balances the pool
    files = sorted(born.glob("*.pdf"))
    half = tmp / "born-half"
    half.mkdir()
    for f in files[: len(files) // 2]:
        os.link(f, half / f.name)
    base, naive, mine, marginal, par = [], [], [], [], []
    for r in range(args.repeat):
        t, n = timed(baseline_born_digital, files)
        base.append(n / t)
        t, n = timed(baseline_born_digital_parallel, files, cores)
        par.append(n / t)
        t, n = timed(baseline_born_digital, files[: max(1, len(files) // 5)], False)
        naive.append(n / t)
        t, s = docsynth_ingest(born, tmp / f"out-born-{r}", ocr={"mode": "auto"})
        assert s.pages == pages and "ocr" not in s.pages_by_source, s
        th, sh = docsynth_ingest(half, tmp / f"out-half-{r}", ocr={"mode": "auto"})
        mine.append(s.pages / t)
        marginal.append((s.pages - sh.pages) / (t - th))
    b, m, mm, bp = (statistics.median(x) for x in (base, mine, marginal, par))
    report(f"\n1. born-digital: {args.docs} docs, {pages} pages")
    report(f"   baseline (1 process, pymupdf render + Pillow jpeg + text): {b:7.1f} pages/s")
    report(f"   the same loop in {cores} processes at once (hardware ceiling):  {bp:7.1f} pages/s"
           f"  = {bp / (cores * b):.2f} x cores x 1 process")
    report(f"   (the same with pymupdf's own jpeg encoder:                 {statistics.median(naive):7.1f} pages/s)")
    report(f"   docsynth ingest ({cores} workers, reading order, shards), whole run: {m:7.1f} pages/s"
           f"  -> ratio per core {m / (cores * b):.2f}")
    report(f"   docsynth marginal rate (run on all minus run on half: start-up excluded): {mm:7.1f} pages/s"
           f"  -> ratio per core {mm / (cores * b):.2f}  (target >= 0.90)")
    report(f"   docsynth whole run vs the plain loop on {cores} processes: {m / bp:.2f}")

    scan = tmp / "scan"
    spages = make_corpus(scan, args.scanned, scanned=True)
    img300 = render_for_ocr(sorted(scan.glob("*.pdf")), tmp / "img300", False)
    same = render_for_ocr(sorted(scan.glob("*.pdf")), tmp / "imgsame", True)
    base, base_same, mine = [], [], []
    for r in range(args.repeat):
        t, n = timed(baseline_tesseract, img300)
        base.append(n / t)
        t, n = timed(baseline_tesseract, same)
        base_same.append(n / t)
        t, s = docsynth_ingest(scan, tmp / f"out-scan-{r}", docs_per_task=1, ocr={"mode": "auto"})
        assert s.pages_by_source == {"ocr": spages}, s
        mine.append(s.pages / t)
    b, bs, m = statistics.median(base), statistics.median(base_same), statistics.median(mine)
    report(f"\n2. scanned (200 dpi scans): {args.scanned} docs, {spages} pages")
    report(f"   baseline (1 process, tesseract on pre-rendered 300 dpi images):      {b:6.2f} pages/s")
    report(f"   baseline (1 process, tesseract on the images docsynth uses, 200 dpi): {bs:6.2f} pages/s")
    report(f"   docsynth ingest, ocr: auto ({cores} workers, rendering included):       {m:6.2f} pages/s")
    report(f"   ratio per core vs 300 dpi images: {m / (cores * b):.2f}  (target >= 0.90); "
           f"vs the same images: {m / (cores * bs):.2f} (docsynth also renders them)")

    small = tmp / "small"
    spg = make_corpus(small, 24)
    auto, always = [], []
    for r in range(args.repeat):
        t, s = docsynth_ingest(small, tmp / f"out-auto-{r}", ocr={"mode": "auto"})
        assert "ocr" not in s.pages_by_source
        auto.append(t)
        t, s = docsynth_ingest(small, tmp / f"out-always-{r}", ocr={"mode": "always"})
        assert s.pages_by_source == {"ocr": spg}
        always.append(t)
    report(f"\n3. born-digital, 24 docs / {spg} pages: ocr auto {statistics.median(auto):.2f} s "
           f"(tesseract called on 0 pages), ocr always {statistics.median(always):.2f} s")
    report(f"   auto is {statistics.median(always) / statistics.median(auto):.0f}x faster  (target >= 20x)")

    blank_pages(tmp, args, report)

    rss = {}
    for n in (10, 100, 300):
        d = tmp / f"rss{n}"
        make_corpus(d, n)
        rss[n] = statistics.median(peak_rss_of_cli(d, tmp / f"out-rss{n}-{r}") for r in range(args.repeat))
    report(f"\n4. peak RSS of the docsynth process tree: 10 docs {rss[10] / 2**20:.0f} MiB, "
           f"100 docs {rss[100] / 2**20:.0f} MiB, 300 docs {rss[300] / 2**20:.0f} MiB "
           f"(100/10: {rss[100] / rss[10]:.2f}, 300/100: {rss[300] / rss[100]:.2f}; flat is ~1)")

    image_formats(report)


if __name__ == "__main__":
    main()
