"""Which page a worker is on, which pages must be skipped, and a per-page deadline."""

from __future__ import annotations

import json
import os
import signal
import time

from docsynth.ingest.sources import DocRef
from docsynth.core.tasks import CRUMB, Task, TaskStore

MAX_POISONED = 50  # pages skipped in one task before the whole task is given up


class PageWatch:
    """The page a worker is on (a breadcrumb file), pages known to kill or hang a worker
    (the task's poison list), and a per-page deadline.

    mupdf holds the GIL while it renders and some content makes it hang (a tiling
    pattern with a microscopic step) or crash, so neither a thread nor a Python signal
    handler can stop it. The deadline is a real-time timer whose SIGALRM keeps its
    default action, so the kernel ends the stuck worker; the parent then reads the
    breadcrumb, poisons that page, and the retry skips exactly it.
    """

    def __init__(self, store: TaskStore, task: Task, deadline_s: float | None = None) -> None:
        self.crumb = store.sidecar(task, CRUMB)
        self.poison = store.sidecar(task, "poison.jsonl")
        self.deadline_s = deadline_s
        self._fd: int | None = None
        if deadline_s is not None:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)

    def begin(self, ref: DocRef, page: int | None) -> None:
        info = {"source": ref.source, "doc_id": ref.doc_id, "page": page,
                "started": time.time(), "deadline_s": self.deadline_s}
        if self._fd is None:  # one open file, rewritten in place: a page costs two syscalls
            self._fd = os.open(self.crumb, os.O_WRONLY | os.O_CREAT, 0o644)
        data = json.dumps(info).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))
        if self.deadline_s is not None:
            signal.setitimer(signal.ITIMER_REAL, self.deadline_s)

    def end(self) -> None:
        if self.deadline_s is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def close(self) -> None:
        self.end()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.crumb.unlink(missing_ok=True)

    def in_progress(self) -> dict | None:
        try:
            return json.loads(self.crumb.read_text())
        except (OSError, ValueError):
            return None

    def add_poison(self, info: dict, reason: str) -> None:
        entry = {k: info[k] for k in ("source", "doc_id", "page")}
        with self.poison.open("a") as fh:
            fh.write(json.dumps({**entry, "reason": reason}) + "\n")
        self.crumb.unlink(missing_ok=True)

    def blame_crash(self) -> bool:
        """After the worker died on this task alone: poison the page it was on. True if the
        poison list grew, so a retry can skip it; False if there is nothing left to skip."""
        crumb = self.in_progress()
        if crumb is None:
            return False
        deadline = crumb["deadline_s"]
        if deadline is not None and time.time() - crumb["started"] >= deadline * 0.95:
            why = f"page timed out after {deadline:g} s (rendering hung)"
        else:
            why = "worker process died on this page (crash inside mupdf or tesseract)"
        before = len(self.poisoned())
        self.add_poison(crumb, why)
        return MAX_POISONED >= len(self.poisoned()) > before

    def poisoned(self) -> dict[tuple[str, int | None], str]:
        try:
            lines = self.poison.read_text().splitlines()
        except OSError:
            return {}
        entries = [json.loads(x) for x in lines if x.strip()]
        return {(e["doc_id"], e["page"]): e["reason"] for e in entries}
