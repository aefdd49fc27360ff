"""Ingest's tasks: small documents taken whole, `inputs.docs_per_task` at a time; a large one
split into page ranges of `inputs.pages_per_task` pages, each a task of its own.

Measured before this (issue 35): five held-out manuals of 471 pages made one task at
docs_per_task 8, so `docsynth ingest` ran on one core. A document is only split where its page
count is known, and counting opens it, so only documents of at least `inputs.split_bytes` are
counted (about 0.2 ms a document here, against the sha256 of its bytes that planning reads
anyway), and in worker processes: a PDF that crashes mupdf takes a worker with it, not the run,
and is then taken whole (ingest's own crash handling meets it again there).

The tasks, and so the pages of the output, are in input order: a large document's ranges
where the document is, the group of small documents before it cut there. The same inputs give
the same tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pymupdf

from docsynth.config.recipe import InputsConfig
from docsynth.core.pool import run_tasks
from docsynth.core.tasks import Task
from docsynth.ingest.sources import DocRef, read_document

log = logging.getLogger(__name__)
COUNT_BATCH = 64  # documents counted per worker call


@dataclass(slots=True)
class CountTask(Task):
    refs: list[DocRef] = field(default_factory=list)


def count_pages(task: CountTask, pdf_column: str) -> dict[str, int]:
    """In a worker: each document's page count (one that does not open is left out: taken whole)."""
    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    out = {}
    for ref in task.refs:
        try:
            with pymupdf.open(stream=read_document(ref, pdf_column), filetype="pdf") as doc:
                out[ref.doc_id] = doc.page_count
        except Exception:  # noqa: BLE001 - damaged, encrypted, not a PDF: ingest says why, whole
            continue
    return out


def page_counts(refs: list[DocRef], pdf_column: str, workers: int) -> dict[str, int]:
    """The page counts of these documents, by doc_id, counted in worker processes."""
    batches = [CountTask(i // COUNT_BATCH, "", refs[i:i + COUNT_BATCH]) for i in range(0, len(refs), COUNT_BATCH)]
    counts: dict[str, int] = {}

    def gave_up(task: CountTask) -> bool:
        log.warning("counting the pages of %d document(s) crashed a worker; they are taken whole", len(task.refs))
        return False

    if batches:
        run_tasks(count_pages, batches, (pdf_column,), min(workers, len(batches)),
                  lambda _task, got: counts.update(got), gave_up)
    return counts


def task_docs(docs: list[DocRef], cfg: InputsConfig, workers: int) -> Iterator[list[DocRef]]:
    """The documents of each task, in order (see the module docstring)."""
    per = cfg.pages_per_task
    counts = page_counts([d for d in docs if d.size >= cfg.split_bytes], cfg.pdf_column, workers)
    group: list[DocRef] = []
    for d in docs:
        n = counts.get(d.doc_id, 0)
        if n > per:
            if group:  # the documents before it first: pages stay in input order
                yield group
                group = []
            for start in range(0, n, per):
                stop = min(n, start + per)
                yield [replace(d, pages=(start, stop), size=d.size * (stop - start) // n)]
            continue
        group.append(d)
        if len(group) == cfg.docs_per_task:
            yield group
            group = []
    if group:
        yield group
