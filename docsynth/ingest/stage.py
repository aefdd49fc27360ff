"""The ingest stage: documents in, per-task parquet shards of Page records out.

    OUT/manifest.json      what made this output (config key, versions, counts)
    OUT/recipe.yaml        the resolved recipe
    OUT/pages/             one shard and marker per task (the store names them)
    OUT/rejects.jsonl      every rejected file or page: source, doc_id, page, reason

A task is `inputs.docs_per_task` consecutive documents. Its tasks are CPU work: executors run
them in `workers` processes (docsynth.core.stage has the contract).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pymupdf

from docsynth.core.summary import StageSummary
from docsynth.core.version import __version__
from docsynth.config.section import config_hash
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write, atomic_write_text
from docsynth.config.recipe import IngestConfig, InputsConfig
from docsynth.core.records import PAGE_SCHEMA, Reject, pages_to_table, write_in_groups, write_rejects
from docsynth.core.tasks import Task, TaskStore
from docsynth.core.rundir import RunDir
from docsynth.hashing.minhash import SHINGLE, signature
from docsynth.core.duplicates import write_duplicates
from docsynth.ingest.dedup import find_duplicates
from docsynth.ingest import layoutmodel
from docsynth.ingest.ocr import check_tesseract
from docsynth.ingest.pages import document_pages
from docsynth.ingest.split import PlanFile, read_docs, task_docs
from docsynth.ingest.sources import DocRef, input_holding, iter_documents, read_document
from docsynth.ingest.watch import PageWatch

log = logging.getLogger(__name__)
ROW_GROUP_PAGES = 32  # pages buffered per parquet row group: bounds a worker's memory
PLAN = "plan.jsonl"  # in the store's folder: the tasks' documents (docsynth.ingest.split.PlanFile)


@dataclass(slots=True)
class IngestTask(Task):
    """Consecutive documents of the inputs, or a page range of one. They are listed in the plan
    file (`at`: its path, the line's offset and length; docsynth.ingest.split) and read from it
    where the task runs, so neither the driver nor what it sends holds a list of documents."""

    at: tuple[str, int, int] = ("", 0, 0)
    parts: int = 0  # documents (or parts of one) it holds: what progress counts
    size: int = 0  # their bytes: big tasks start first

    @property
    def docs(self) -> list[DocRef]:
        """Read from the plan file at each call, never kept: the driver holds every task."""
        return read_docs(*self.at, self.key)

    def __getstate__(self):
        # Sent without its documents: the plan file is in the run directory, which every worker
        # sees (its shard goes there too). With them, the Ray driver held 107 bytes a document in
        # the pickles it sends and about 700 in the tasks it reads back (1.3M documents: over
        # 1 GB); without, a task is about 130 bytes, 16 a document (bench/scale.py's corpus).
        return (self.index, self.key, self.at, self.parts, self.size)

    def __setstate__(self, state) -> None:
        self.index, self.key, self.at, self.parts, self.size = state


@dataclass(slots=True)
class IngestSummary(StageSummary):
    """What an ingest run did; also the JSON summary of the CLI."""

    docs: int = 0
    pages: int = 0
    pages_this_run: int = 0  # pages produced now, not reused from an earlier run
    pages_by_source: dict[str, int] = field(default_factory=dict)
    pages_by_reader: dict[str, int] = field(default_factory=dict)  # text layers by what ordered them
    rejects: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    rejects_file: str = ""
    duplicates: dict[str, int] = field(default_factory=dict)  # near-duplicates dropped (ingest.dedup)
    shards: int = 0  # in out_dir/pages (their names: the manifest)
    pages_per_s: float = 0.0

    @property
    def produced(self) -> bool:
        return self.pages > 0


class IngestStage:
    """Render and read every page of the recipe's inputs (see docsynth.core.stage)."""

    name = "ingest"
    opening = ""

    def __init__(self, inputs: InputsConfig, cfg: IngestConfig, base: Path, out: Path, resolved: str = "") -> None:
        """inputs and cfg: the recipe's inputs and ingest sections; resolved: the recipe as YAML,
        kept beside the pages (OUT/recipe.yaml)."""
        self.inputs, self.cfg, self.base, self.out, self.resolved = inputs, cfg, base, out, resolved
        self.store = TaskStore.of(out, "ingest")
        self.workers = cfg.workers or os.cpu_count() or 1
        self.plan_rejects: list[Reject] = []
        self.tesseract: str | None = None

    def __getstate__(self) -> dict:
        # Pickled into every worker task: the plan's rejects stay on the driver, which finishes.
        return {**self.__dict__, "plan_rejects": []}

    def begin(self) -> None:
        holding = input_holding(self.inputs.paths, self.base, self.out)
        if holding is not None:
            raise DocsynthError(f"the output {self.out} is inside the input {holding}: the next run would read its "
                                "own shards as documents; write it elsewhere")
        cfg = self.cfg
        self.tesseract = check_tesseract(cfg.ocr.languages) if cfg.ocr.mode != "never" else None
        if cfg.layout == "model":
            layoutmodel.require()
        self.store.prepare()
        write_duplicates(self.out, None)  # an earlier run's must not steer a generate that follows this one
        if self.resolved:
            atomic_write_text(RunDir(self.out).recipe("ingest"), self.resolved)

    def plan(self) -> list[IngestTask]:
        """Deterministic tasks over the inputs: consecutive documents, docs_per_task at a time, and
        a large document's page ranges (docsynth.ingest.split). Largest first, so a big task
        does not start last and leave the other cores idle (shards are named by task index, so
        the output does not depend on this order)."""
        self.plan_rejects = []
        # dedup is decided after every task (finish): changing it redoes no page
        key = config_hash(self.cfg.model_dump(mode="json", exclude={"dedup"}), self.inputs.pdf_column,
                          PAGE_SCHEMA.names, __version__)
        plan = PlanFile((self.store.root / PLAN).resolve())  # absolute: a worker's directory may differ
        tasks = []
        try:
            docs = iter_documents(self.inputs, self.base, self.plan_rejects.append)
            for i, part in enumerate(task_docs(docs, self.inputs, self.workers)):
                k = config_hash({"ids": [d.doc_id for d in part], **({"pages": [d.pages for d in part]} if part[0].pages
                                                                   else {})}, key)
                tasks.append(IngestTask(i, k, plan.add(part, k), len(part), sum(d.size for d in part)))
        finally:
            plan.close()
        if not tasks and not self.plan_rejects:
            raise DocsynthError("the inputs hold no documents")
        return sorted(tasks, key=lambda t: -t.size)

    def open(self) -> None:
        os.environ["OMP_THREAD_LIMIT"] = "1"  # tesseract: one thread per process is 3x faster here
        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)

    def run(self, tasks: list[IngestTask]):
        for task in tasks:
            yield task, self._run_one(task)

    def _run_one(self, task: IngestTask) -> dict:
        """Render and read every page of the task's documents into its shard."""
        t0 = time.perf_counter()
        cfg, pdf_column = self.cfg, self.inputs.pdf_column
        rejects: list[dict] = []
        signatures: list[list[str]] = []  # [doc_id, MinHash signature hex], in document order
        by_source: Counter[str] = Counter()
        by_reader: Counter[str] = Counter()
        ocr_s = cfg.ocr.timeout_s if cfg.ocr.mode != "never" else 0.0
        watch = PageWatch(self.store, task, cfg.page_timeout_s + ocr_s)

        def reject(ref: DocRef, page: int | None, reason: str) -> None:
            rejects.append(Reject("ingest", ref.source, ref.doc_id, page, reason).to_dict())

        docs = task.docs

        def pages():
            for ref in docs:
                try:
                    data = read_document(ref, pdf_column)
                except OSError as e:
                    reject(ref, None, f"unreadable: {e.strerror or e}")
                    continue
                except DocsynthError as e:  # a remote input: gone (404), refused (403), or down past its retries
                    reject(ref, None, f"unreadable: {e}")
                    continue
                texts = []
                for page in document_pages(ref, data, cfg, reject, watch):
                    by_source[page.text_source] += 1
                    if page.reader:
                        by_reader[page.reader] += 1
                    texts.append(page.text)
                    yield page
                sig = signature(texts, SHINGLE)
                if sig is not None:
                    signatures.append([ref.doc_id, sig.tobytes().hex()])

        def write(tmp: Path) -> None:
            compression = {c: ("none" if c == "image" else "zstd") for c in PAGE_SCHEMA.names}
            with pq.ParquetWriter(tmp, PAGE_SCHEMA, compression=compression,
                                  use_dictionary=["doc_id", "source", "image_format", "text_source"]) as w:
                write_in_groups(w, pages(), PAGE_SCHEMA, ROW_GROUP_PAGES)

        try:
            atomic_write(self.store.shard(task), write)
        finally:
            watch.close()
        return {"pages": sum(by_source.values()), "by_source": dict(by_source), "by_reader": dict(by_reader),
                "rejects": rejects,
                "minhash": signatures, "docs": sum(d.first for d in docs),
                "seconds": round(time.perf_counter() - t0, 3)}

    def crashed(self, task: IngestTask) -> dict | None:
        """A worker died on this task alone: skip the page it died on and retry (None), or give
        the task up with an empty shard and a reject per document."""
        if PageWatch(self.store, task).blame_crash():
            return None
        reason = "worker process died while processing this task, outside any page"
        docs = task.docs
        rej = [Reject("ingest", d.source, d.doc_id, None, reason).to_dict() for d in docs]
        atomic_write(self.store.shard(task), lambda tmp: pq.write_table(pages_to_table([]), tmp))
        return {"pages": 0, "by_source": {}, "rejects": rej, "docs": sum(d.first for d in docs), "seconds": 0.0}

    def _dedup(self, tasks: list[IngestTask], markers: dict[int, dict]) -> list[Reject]:
        """Near-duplicates across the run (docsynth.ingest.dedup), written to OUT/duplicates.json
        for generate; without ingest.dedup, no file (an earlier run's is removed)."""
        cfg = self.cfg.dedup
        if not cfg.enabled:
            return []
        found, content = find_duplicates(self.store.shards(tasks), [markers[t.index].get("minhash", []) for t in tasks], cfg)
        write_duplicates(self.out, content)
        return found

    def finish(self, tasks: list[IngestTask], markers: dict[int, dict], reused: set[int], t0: float) -> IngestSummary:
        tasks = sorted(tasks, key=lambda t: t.index)
        duplicates = self._dedup(tasks, markers)
        reasons = write_rejects(RunDir(self.out).rejects("ingest"), itertools.chain(
            (r.to_dict() for r in self.plan_rejects), (r for t in tasks for r in markers[t.index]["rejects"]),
            (r.to_dict() for r in duplicates)))
        by_source: Counter[str] = Counter()
        by_reader: Counter[str] = Counter()
        pages = pages_now = 0
        for t in tasks:
            m = markers[t.index]
            by_source.update(m["by_source"])
            by_reader.update(m.get("by_reader", {}))
            pages += m["pages"]
            pages_now += m["pages"] if t.index not in reused else 0
        s = IngestSummary(
            out_dir=str(self.out), docs=sum(_docs(t, markers[t.index]) for t in tasks), tasks=len(tasks),
            tasks_skipped=len(reused),
            pages=pages, pages_by_source=dict(sorted(by_source.items())), pages_by_reader=dict(sorted(by_reader.items())),
            rejects=sum(reasons.values()), reject_reasons=dict(reasons),
            rejects_file=str(RunDir(self.out).rejects("ingest")), shards=len(tasks), pages_this_run=pages_now)
        s.duplicates = {"documents": sum(r.page is None for r in duplicates),
                        "pages": sum(r.page is not None for r in duplicates)}
        s.seconds = round(time.perf_counter() - t0, 3)
        s.pages_per_s = round(s.pages_this_run / s.seconds, 2) if s.seconds else 0.0
        manifest = {"stage": "ingest", "config_key": config_hash(self.cfg, self.inputs),
                    "versions": {"docsynth": __version__, "pymupdf": pymupdf.VersionBind,
                                 "tesseract": self.tesseract},
                    "tasks": len(tasks), "docs": s.docs, "pages": s.pages,
                    "rejects": s.rejects, "shards": [p.name for p in self.store.shards(tasks)]}
        RunDir(self.out).write_manifest("ingest", manifest)
        return s


def _docs(task: IngestTask, marker: dict) -> int:
    """The documents a task holds whole or begins (a marker from before issue 35 has no count)."""
    return marker["docs"] if "docs" in marker else sum(d.first for d in task.docs)
