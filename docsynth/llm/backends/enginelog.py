"""vLLM's log in docsynth's form: one line per record on stderr; an exception's traceback goes to
a log file instead of the terminal, and its innermost cause is kept for the error message.

vLLM's engine runs in a child process whose failures (out of memory, weights it cannot load)
were printed as a page of traceback before docsynth could say anything. vLLM configures its
loggers, in the parent and in each engine process, from the dictConfig at
VLLM_LOGGING_CONFIG_PATH; `installed` points that at a config naming EngineLogHandler.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from docsynth.core.environ import environment

CAUSE = "docsynth-cause: "


@contextmanager
def installed(log_dir: Path) -> Iterator[None]:
    """Within it, vLLM's logging goes through EngineLogHandler: in this process if vLLM is first
    imported here, and in every engine process started here (they keep it for their lives). The
    environment is restored after, so programs started later (a `vllm serve`) are left alone.
    Nothing changes where the user configures vLLM's logging themselves."""
    if os.environ.get("VLLM_LOGGING_CONFIG_PATH") or os.environ.get("VLLM_CONFIGURE_LOGGING") == "0":
        yield
        return
    with environment(_config(log_dir)):
        yield


def _config(log_dir: Path) -> dict[str, str]:
    log_dir.mkdir(parents=True, exist_ok=True)
    level = os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper()
    config = {"version": 1, "disable_existing_loggers": False,
              "handlers": {"docsynth": {"class": f"{__name__}.EngineLogHandler", "level": level}},
              "loggers": {"vllm": {"handlers": ["docsynth"], "level": level, "propagate": False}}}
    text = json.dumps(config, sort_keys=True)
    # Named by its content: a file left by another docsynth version (whose handler lived in
    # another module) is never taken for this one's.
    path = log_dir / f"vllm-logging-{level.lower()}-{hashlib.sha256(text.encode()).hexdigest()[:8]}.json"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    log_file = log_dir / f"vllm-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    return {"VLLM_LOGGING_CONFIG_PATH": str(path), "DOCSYNTH_ENGINE_LOG": str(log_file),
            "DOCSYNTH_ENGINE_PARENT": str(os.getpid())}


def last_cause() -> str | None:
    """The innermost cause of the last exception an engine process logged, if any."""
    path = os.environ.get("DOCSYNTH_ENGINE_LOG")
    try:
        lines = Path(path).read_text().splitlines() if path else []
    except OSError:
        return None
    causes = [x[len(CAUSE):] for x in lines if x.startswith(CAUSE)]
    return causes[-1] if causes else None


def _innermost(e: BaseException) -> BaseException:
    seen = set()
    while id(e) not in seen and (e.__cause__ or e.__context__) is not None:
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return e


class EngineLogHandler(logging.Handler):
    """Each record as `LEVEL logger: message` in $DOCSYNTH_ENGINE_LOG, and on stderr from
    DOCSYNTH_ENGINE_TERMINAL's level; an exception as its one-line cause there, with the traceback
    appended to the log.

    In an engine process (not the one that started it) the handler is made as vLLM configures
    its logging, before anything can fail; it then sends the process's own stderr (the traceback
    multiprocessing prints for a process that dies, C++ warnings, load bars) to the log file,
    keeps the terminal for its one-line records, and ends with the process that started it
    (docsynth.llm.backends.parentwatch)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.out = sys.stderr
        path, parent = os.environ.get("DOCSYNTH_ENGINE_LOG"), os.environ.get("DOCSYNTH_ENGINE_PARENT")
        self.path = path  # kept: `installed` restores the environment once the engine has started
        if path and parent and parent != str(os.getpid()):
            terminal = os.dup(2)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 2)
            os.close(fd)
            self.out = os.fdopen(terminal, "w", buffering=1)
            from docsynth.llm.backends.parentwatch import watch_parent

            watch_parent()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.levelname} {record.name}: {record.getMessage()}"
            path = self.path or os.environ.get("DOCSYNTH_ENGINE_LOG")
            if record.exc_info and record.exc_info[1] is not None:
                cause = _innermost(record.exc_info[1])
                summary = f"{type(cause).__name__}: {str(cause).strip()}".replace("\n", " ")
                if path:
                    with open(path, "a") as f:
                        f.write(line + "\n" + "".join(traceback.format_exception(*record.exc_info)))
                        f.write(CAUSE + summary + "\n")
                line += f" ({summary}" + (f"; traceback in {path})" if path else ")")
            elif path:
                with open(path, "a") as f:
                    f.write(line + "\n")
            if record.levelno >= _terminal_level() or not path:
                self.out.write(line + "\n")
                self.out.flush()
        except Exception:
            self.handleError(record)


def _terminal_level() -> int:
    """The level from which vLLM's records also reach the terminal (DOCSYNTH_ENGINE_TERMINAL, set
    by the CLI: ERROR, or INFO with -v); every record is in the engine log."""
    name = os.environ.get("DOCSYNTH_ENGINE_TERMINAL", "WARNING").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.WARNING
