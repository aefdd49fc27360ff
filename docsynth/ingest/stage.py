"""The ingest stage: documents in, per-task parquet shards of Page records out.

    OUT/manifest.json      what made this output (config key, versions, counts)
    OUT/recipe.yaml        the resolved recipe
    OUT/pages/task-NNNNN.parquet + task-NNNNN.done.json
    OUT/rejects.jsonl      every rejected file or page: source, doc_id, page, reason
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pymupdf

import docsynth
from docsynth.errors import DocsynthError
from docsynth.ingest.ocr import check_tesseract, ocr_page
from docsynth.ingest.pdf import BadDocument, BadPage, layer_is_usable, layer_text, open_pdf, render
from docsynth.ingest.sources import DocRef, iter_documents, read_document
from docsynth.ingest.watch import PageWatch
from docsynth.records import PAGE_SCHEMA, Page, Reject, pages_to_table, write_in_groups
from docsynth.config import config_hash
from docsynth.recipe import IngestConfig, Recipe, dump_recipe
from docsynth.run.pool import prestart, run_tasks
from docsynth.run.tasks import Task, TaskStore, atomic_write, atomic_write_text

log = logging.getLogger(__name__)
ROW_GROUP_PAGES = 32  # pages buffered per parquet row group: bounds a worker's memory


@dataclass(slots=True)
class IngestSummary:
    """What an ingest run did; also the JSON summary of the CLI."""

    out_dir: str
    docs: int = 0
    tasks: int = 0
    tasks_skipped: int = 0
    pages: int = 0
    pages_this_run: int = 0  # pages produced now, not reused from an earlier run
    pages_by_source: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    rejects_file: str = ""
    shards: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pages_per_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(slots=True)
class Progress:
    """Hooks the caller may override to show progress; the library calls them in this process."""

    def planned(self, docs: int, docs_done: int) -> None: ...

    def advanced(self, docs: int, pages: int) -> None: ...


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0]


def plan(recipe: Recipe, base: Path, rejects: list[Reject]) -> list[Task]:
    """Deterministic tasks over the inputs: consecutive documents, docs_per_task at a time."""
    docs = list(iter_documents(recipe.inputs, base, rejects.append))
    key = config_hash(recipe.ingest, recipe.inputs.pdf_column, docsynth.__version__)
    n = recipe.inputs.docs_per_task
    tasks = []
    for i in range(0, len(docs), n):
        items = docs[i:i + n]
        tasks.append(Task(i // n, items, config_hash({"ids": [d.doc_id for d in items]}, key)))
    return tasks


def run_ingest(recipe: Recipe, base: Path, out: Path, progress: Progress | None = None) -> IngestSummary:
    """Ingest the recipe's inputs into out; completed tasks from an earlier run are kept."""
    t0 = time.perf_counter()
    progress = progress or Progress()
    cfg = recipe.ingest
    prestart(ingest_task)  # worker imports overlap the checks and planning below
    tesseract = check_tesseract(cfg.ocr.languages) if cfg.ocr.mode != "never" else None
    plan_rejects: list[Reject] = []
    tasks = plan(recipe, base, plan_rejects)
    if not tasks and not plan_rejects:
        raise DocsynthError("the inputs hold no documents")
    store = TaskStore(out / "pages")
    store.prune(tasks)
    markers: dict[int, dict] = {}
    todo = []
    for t in tasks:
        info = store.done(t)
        if info is None:
            todo.append(t)
        else:
            markers[t.index] = info
    log.info("%d tasks, %d already done", len(tasks), len(markers))
    progress.planned(sum(len(t.items) for t in tasks), sum(len(tasks[i].items) for i in markers))
    atomic_write_text(out / "recipe.yaml", dump_recipe(recipe))

    def on_result(task: Task, info: dict) -> None:
        store.commit(task, info)
        markers[task.index] = info
        progress.advanced(len(task.items), info["pages"])

    def on_crash(task: Task) -> bool:
        """A worker died on this task alone: skip the page it died on and retry, or give up."""
        if PageWatch(store, task).blame_crash():
            return True
        reason = "worker process died while processing this task, outside any page"
        rej = [Reject("ingest", d.source, d.doc_id, None, reason).to_dict() for d in task.items]
        atomic_write(store.shard(task), lambda tmp: pq.write_table(pages_to_table([]), tmp))
        on_result(task, {"pages": 0, "by_source": {}, "rejects": rej, "seconds": 0.0})
        return False

    workers = cfg.workers or os.cpu_count() or 1
    # Largest first, so a big document does not start last and leave the other cores idle;
    # shards are named by task index, so the output does not depend on this order.
    todo.sort(key=lambda t: -sum(d.size for d in t.items))
    run_tasks(ingest_task, todo, (cfg, recipe.inputs.pdf_column, store), min(workers, max(len(todo), 1)),
              on_result, on_crash, initializer=init_worker)
    summary = finish(recipe, out, tasks, store, markers, plan_rejects, tesseract, len(tasks) - len(todo), t0)
    summary.pages_this_run = sum(markers[t.index]["pages"] for t in todo)
    summary.pages_per_s = round(summary.pages_this_run / summary.seconds, 2) if summary.seconds else 0.0
    return summary


def finish(recipe, out, tasks, store, markers, plan_rejects, tesseract, skipped, t0) -> IngestSummary:
    rejects = [r.to_dict() for r in plan_rejects] + [r for t in tasks for r in markers[t.index]["rejects"]]
    atomic_write_text(out / "rejects.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    by_source: Counter[str] = Counter()
    for t in tasks:
        by_source.update(markers[t.index]["by_source"])
    summary = IngestSummary(
        out_dir=str(out), docs=sum(len(t.items) for t in tasks), tasks=len(tasks), tasks_skipped=skipped,
        pages=sum(m["pages"] for m in markers.values()), pages_by_source=dict(sorted(by_source.items())),
        rejects=len(rejects), reject_reasons=dict(Counter(_reason_kind(r["reason"]) for r in rejects)),
        rejects_file=str(out / "rejects.jsonl"), shards=[str(p) for p in store.shards(tasks)])
    summary.seconds = round(time.perf_counter() - t0, 3)
    manifest = {"stage": "ingest", "config_key": config_hash(recipe.ingest, recipe.inputs),
                "versions": {"docsynth": docsynth.__version__, "pymupdf": pymupdf.VersionBind,
                             "tesseract": tesseract},
                "tasks": len(tasks), "docs": summary.docs, "pages": summary.pages,
                "rejects": summary.rejects, "shards": [p.name for p in store.shards(tasks)]}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return summary


def init_worker() -> None:
    os.environ["OMP_THREAD_LIMIT"] = "1"  # tesseract: one thread per process is 3x faster here
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)


def ingest_task(task: Task, cfg: IngestConfig, pdf_column: str, store: TaskStore) -> dict:
    """Worker: render and read every page of the task's documents into its shard."""
    t0 = time.perf_counter()
    rejects: list[dict] = []
    by_source: Counter[str] = Counter()
    ocr_s = cfg.ocr.timeout_s if cfg.ocr.mode != "never" else 0.0
    watch = PageWatch(store, task, cfg.page_timeout_s + ocr_s)

    def reject(ref: DocRef, page: int | None, reason: str) -> None:
        rejects.append(Reject("ingest", ref.source, ref.doc_id, page, reason).to_dict())

    def pages():
        for ref in task.items:
            try:
                data = read_document(ref, pdf_column)
            except OSError as e:
                reject(ref, None, f"unreadable: {e.strerror or e}")
                continue
            for page in document_pages(ref, data, cfg, reject, watch):
                by_source[page.text_source] += 1
                yield page

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, PAGE_SCHEMA, compression={c: ("none" if c == "image" else "zstd") for c in PAGE_SCHEMA.names},
                              use_dictionary=["doc_id", "source", "image_format", "text_source"]) as w:
            write_in_groups(w, pages(), PAGE_SCHEMA, ROW_GROUP_PAGES)

    try:
        atomic_write(store.shard(task), write)
    finally:
        watch.close()
    return {"pages": sum(by_source.values()), "by_source": dict(by_source), "rejects": rejects,
            "seconds": round(time.perf_counter() - t0, 3)}


def document_pages(ref: DocRef, data: bytes, cfg: IngestConfig,
                   reject: Callable[[DocRef, int | None, str], None], watch: PageWatch):
    """Yield the Page records of one document; bad documents and pages go to reject."""
    poisoned = watch.poisoned()
    if (ref.doc_id, None) in poisoned:
        reject(ref, None, poisoned[(ref.doc_id, None)])
        return
    watch.begin(ref, None)
    try:
        doc = open_pdf(data)
        if doc.is_repaired:
            doc.load_page(0)  # page-tree repair warnings belong to no page
        pymupdf.TOOLS.mupdf_warnings(reset=True)
    except BadDocument as e:
        reject(ref, None, str(e))
        return
    finally:
        watch.end()
    with doc:
        n = doc.page_count
        for i in range(n):
            if (ref.doc_id, i) in poisoned:
                reject(ref, i, poisoned[(ref.doc_id, i)])
                continue
            watch.begin(ref, i)
            try:
                page = doc.load_page(i)
                image, w, h, dpi = render(page, cfg)
                text, source, conf = page_text(page, cfg)
                warned = pymupdf.TOOLS.mupdf_warnings(reset=True)
                if doc.is_repaired and warned:
                    # In a file mupdf had to repair (truncated, broken xref), a page that warns
                    # lost content: its image and text would be partial.
                    raise BadPage(f"damaged page in a repaired file: {warned.splitlines()[0]}")
            except BadPage as e:
                reject(ref, i, str(e))
                continue
            except Exception as e:  # mupdf can raise anything on a damaged page
                reject(ref, i, f"page failed: {type(e).__name__}: {e}")
                continue
            finally:
                watch.end()
            yield Page(ref.doc_id, ref.source, i, n, image, cfg.image_format, w, h, round(dpi, 2),
                       text, source, conf)


def page_text(page, cfg: IngestConfig) -> tuple[str, str, float | None]:
    """(text, where it came from, OCR confidence): the text layer first, OCR where needed."""
    ocr = cfg.ocr
    if ocr.mode != "always":
        text = layer_text(page)
        if ocr.mode == "never" or layer_is_usable(text, ocr):
            return text, ("layer" if text.strip() else "none"), None
    text, conf = ocr_page(page, ocr, cfg.max_pixels)
    return text, "ocr", round(conf, 2)


def file_page_texts(path: Path, cfg: IngestConfig) -> list[str]:
    """The text of every page of one file, as ingest would read it (a .txt file is one page)."""
    if path.suffix.lower() in (".txt", ".md"):
        return [path.read_text()]
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DocsynthError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        doc = open_pdf(data)
    except BadDocument as e:
        raise DocsynthError(f"{path}: {e}") from None
    if cfg.ocr.mode != "never":
        check_tesseract(cfg.ocr.languages)
    with doc:
        return [page_text(page, cfg)[0] for page in doc]
