"""What a run gives when nobody watches it (nohup, Slurm, CI logs): heartbeat lines at a steady
interval, with each stage's progress, rate and ETA, where progress bars cannot draw; and a run
log in the run directory that keeps docsynth's own log at INFO whatever the terminal shows."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import Progress

from docsynth.core.secrets import Redacted

log = logging.getLogger("docsynth.heartbeat")
HEARTBEAT_S = 30.0  # default interval; DOCSYNTH_HEARTBEAT_S sets it (seconds)
RUN_LOG = "run.log"


def interval() -> float:
    try:
        return max(0.05, float(os.environ.get("DOCSYNTH_HEARTBEAT_S", HEARTBEAT_S)))
    except ValueError:
        return HEARTBEAT_S


class Bars(Progress):
    """The stage bars; on a terminal drawn as usual, elsewhere one heartbeat line a stage every
    interval() seconds on stderr (and in the run log), and a last one at the end."""

    def __init__(self, *columns, console, enabled: bool, **kwargs) -> None:
        self.beating = not console.is_terminal
        super().__init__(*columns, console=console, disable=not enabled or self.beating, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Bars:
        super().__enter__()
        if self.beating:
            self._thread = threading.Thread(target=self._beat, name="docsynth-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.heartbeat()  # where each stage ended
        super().__exit__(*exc)

    def _beat(self) -> None:
        while not self._stop.wait(interval()):
            self.heartbeat()

    def heartbeat(self) -> None:
        for line in heartbeat_lines(self):
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            log.info(line)


def heartbeat_lines(progress: Progress) -> list[str]:
    """One line a stage: done of total in its unit, its counted field's rate, elapsed and ETA."""
    out = []
    stamp = time.strftime("%H:%M:%S")
    for t in list(progress.tasks):
        field = t.fields.get("rate", "")
        n = t.fields.get(field, 0)
        elapsed = t.elapsed or 0.0
        rate = f", {n:,} {t.fields.get('rate_unit', field)} at {n / elapsed:,.1f}/s" if field and elapsed > 0 else ""
        total = f"/{int(t.total):,}" if t.total else ""
        eta = t.time_remaining
        out.append(f"heartbeat {stamp} {t.description}: {int(t.completed):,}{total} {t.fields.get('unit', '')}{rate}; "
                   f"elapsed {_clock(elapsed)}, ETA {_clock(eta) if eta is not None else '?'}")
    return out


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@contextmanager
def run_log(folder: Path) -> Iterator[Path]:
    """docsynth's log records at INFO (and every heartbeat) appended to FOLDER/run.log while the
    command runs, whatever the terminal shows (-v)."""
    path = Path(folder) / RUN_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    # Opened at the first record: a command that stops at once (the directory is another run's,
    # its lock held) writes nothing into it.
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redacted())
    ours = logging.getLogger("docsynth")
    level = ours.level
    ours.setLevel(min(level or logging.WARNING, logging.INFO))  # the terminal's handler keeps its own level
    logging.getLogger().addHandler(handler)
    try:
        yield path
    finally:
        logging.getLogger().removeHandler(handler)
        ours.setLevel(level)
        handler.close()
