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

The documents are read as a stream, CHUNK at a time, and each task's list is written to a plan
file beside the shards (PlanFile); the driver keeps only where each task's line is. A document
in memory is about 700 bytes (its id, path, size): 1.3M of them, Docmatix's count, would be
about 1 GB held by the driver for the whole run.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path

import pymupdf

from docsynth.config.recipe import InputsConfig
from docsynth.core.errors import DocsynthError
from docsynth.core.pool import run_tasks
from docsynth.core.tasks import Task
from docsynth.ingest.sources import DocRef, read_document

log = logging.getLogger(__name__)
COUNT_BATCH = 64  # documents counted per worker call
CHUNK = 8192  # documents read before their large ones are counted (and the tasks of all made)


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


def task_docs(docs: Iterable[DocRef], cfg: InputsConfig, workers: int) -> Iterator[list[DocRef]]:
    """The documents of each task, in order (see the module docstring)."""
    per = cfg.pages_per_task
    group: list[DocRef] = []
    it = iter(docs)
    while chunk := list(itertools.islice(it, CHUNK)):
        counts = page_counts([d for d in chunk if d.size >= cfg.split_bytes], cfg.pdf_column, workers)
        for d in chunk:
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


class PlanFile:
    """The planned tasks' documents, one JSON line a task (written to a temporary name, renamed
    by close); `add` returns where a task's line is. The line holds the task's key too, so a
    worker never runs a task on the documents of another plan's line (a plan file rewritten
    under it: by then that is a bug, said as one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.f = self.tmp.open("wb")

    def add(self, docs: list[DocRef], key: str) -> tuple[str, int, int]:
        line = json.dumps([key, [astuple(d) for d in docs]], separators=(",", ":")).encode() + b"\n"
        at = (str(self.path), self.f.tell(), len(line))
        self.f.write(line)
        return at

    def close(self) -> None:
        self.f.close()
        self.tmp.replace(self.path)


def read_docs(path: str, offset: int, length: int, key: str) -> list[DocRef]:
    """A task's documents, from its line of the plan file."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            got, rows = json.loads(f.read(length))
    except (OSError, ValueError) as e:
        raise DocsynthError(f"{path}: cannot read the documents of a planned task ({e}); the plan was changed "
                            "or removed while the run went on: run again") from None
    if got != key:
        raise DocsynthError(f"{path}: the line at byte {offset} is another task's: the plan was changed while the "
                            "run went on: run again")
    return [DocRef(*r[:-1], tuple(r[-1]) if r[-1] is not None else None) for r in rows]
