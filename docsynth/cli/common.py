"""What every command shares: consoles, logging, error handling, recipe loading, progress."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from docsynth.cli.unattended import Bars
from docsynth.core.children import Terminated
from docsynth.core.errors import DocsynthError, RecipeError, UsageError
from docsynth.core.secrets import Redacted, redact
from docsynth.config.recipe import Recipe, load_recipe, parse_recipe

out = Console()  # results for people
err = Console(stderr=True)  # progress, logs, errors

EXIT_ERROR, EXIT_USAGE, EXIT_REJECTS, EXIT_EMPTY, EXIT_INTERNAL = 1, 2, 3, 4, 70  # 70: EX_SOFTWARE
StrictOption = Annotated[bool, typer.Option("--strict", help=(
    "Exit 3 when anything was rejected or left out (default: 0; the counts are in the summary)."))]


def results_only_on_stdout() -> None:
    """Keep stdout for results (--json, JSON lines): point file descriptor 1 at stderr, so that
    whatever a child process (vLLM's engine processes, Ray's) or a C library writes there goes to
    the log stream, and give Python's own `sys.stdout` a private copy of the real one. (What
    Python code prints to sys.stdout is its own matter: the Ray executor sends Ray's to stderr.)"""

    try:
        sys.stdout.flush()
        results = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError):  # no stdout or no stderr to swap: leave them as they are
        return
    sys.stdout = os.fdopen(results, "w", buffering=1, encoding=sys.stdout.encoding, errors=sys.stdout.errors)


def setup_logging(level: int) -> None:
    # vLLM logs every engine step at INFO; keep it to warnings unless asked for more (-v).
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING" if level >= logging.WARNING else "INFO")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # stdout is for results (--json)
    # vLLM's records: to the engine log always, to the terminal from this level (its warnings,
    # about Triton, chunked prefill or eager mode, are nothing a user can act on; -v shows them).
    os.environ.setdefault("DOCSYNTH_ENGINE_TERMINAL", "ERROR" if level >= logging.WARNING else "INFO")
    if err.is_terminal:
        handler: logging.Handler = RichHandler(console=err, show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # nohup, Slurm, CI: one line per record, never wrapped, so a log can be grepped
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    handler.addFilter(Redacted())
    handler.setLevel(level)  # the terminal's level; the run log (docsynth.cli.unattended) keeps INFO
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("docsynth").setLevel(level)


@contextmanager
def failures() -> Iterator[None]:
    """Turn library errors into a message and an exit code, never a traceback."""
    try:
        yield
    except (RecipeError, UsageError) as e:
        err.print(f"[red]error:[/red] {escape(redact(str(e)))}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE) from None
    except DocsynthError as e:
        err.print(f"[red]error:[/red] {escape(redact(str(e)))}", highlight=False, soft_wrap=True)  # its text is data
        raise typer.Exit(EXIT_ERROR) from None
    except OSError as e:  # a full disk, a file that vanished, no permission: say which
        err.print(f"[red]error:[/red] {escape(redact(str(e.strerror or e)))}" + (f": {escape(redact(str(e.filename)))}" if e.filename else ""),
                  highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]: finished tasks are kept; rerun the same command to resume")
        raise typer.Exit(130) from None
    except Terminated:
        err.print("[yellow]terminated[/yellow] (SIGTERM): finished tasks are kept; rerun the same command to resume")
        raise typer.Exit(Terminated.exit_code) from None
    except Exception as e:  # a bug, or a library failing in a way not yet named: no traceback on screen
        err.print(f"[red]error:[/red] unexpected {escape(type(e).__name__)}: {escape(redact(str(e)))}; finished tasks are "
                  f"kept. The traceback is in {escape(str(_save_traceback()))}: please report it",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERNAL) from None


def _save_traceback() -> Path:
    """The current exception's traceback, in a file of its own for a bug report."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix="docsynth-traceback-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        traceback.print_exc(file=f)
    return Path(name)


@contextmanager
def engines_stopped() -> Iterator[None]:
    """Stop the engines this command started when it ends, while logging still works; left to
    vLLM's exit hooks, each is reported as an engine process that "exited unexpectedly"."""
    try:
        yield
    finally:
        from docsynth.api.show import shutdown_engines

        shutdown_engines()


SetOption = Annotated[list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=(
    "Override a recipe key, e.g. --set generate.pairs_per_page=2 --set ingest.ocr.mode=never; the value is "
    "read as YAML (2, true, [a, b]); repeatable; checked like the recipe itself."))]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, metavar="N", help=(
    "Only the first N documents (inputs.max_docs), to try a recipe on a few."))]


def settings(pairs: list[str] | None, limit: int | None = None) -> dict[str, Any]:
    """--set KEY=VALUE pairs (and --limit) as recipe_with overrides; UsageError for a malformed one."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip() or any(not part for part in key.strip().split(".")):
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE with a dotted key, e.g. generate.pairs_per_page=2")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError as e:
            raise UsageError(f"--set {pair!r}: the value is not valid YAML: {e}") from None
    if limit is not None:
        out["inputs.max_docs"] = limit
    return out


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The command's own override options that were given (an option left out is None)."""
    return {k: v for k, v in options.items() if v is not None}


def recipe_with(path: Path | None, overrides: dict[str, Any]) -> tuple[Recipe, Path]:
    """Load a recipe and apply command-line overrides ("section.key": value), validated."""
    recipe, base = load_recipe(path)
    data = recipe.model_dump(mode="json")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for i, p in enumerate(parents):
            if node.get(p) is None:  # a section that defaults to another's (verify.openai): its own now
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise RecipeError(f"{'.'.join(parents[:i + 1])} is a value, not a section: cannot set {dotted}")
        node[leaf] = value
    return parse_recipe(data, str(path or "command-line options")), base


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def report(summary, json_out: bool, human: Callable[[], None], strict: bool = False, plan: bool = False) -> None:
    """Print a command's summary (JSON for scripts, else tables), then exit 4 if it produced
    nothing at all, or (strict) 3 if it rejected anything; else 0, as schedulers expect of a
    finished job (datatrove and distilabel also exit 0 and report counts). A plan (--dry-run)
    produces nothing by design."""
    if json_out:
        print_json(summary.to_dict())
    else:
        human()
    if not plan and not getattr(summary, "produced", True):
        err.print("[yellow]nothing was produced[/yellow]: every input was rejected or left out (exit code "
                  f"{EXIT_EMPTY}); the summary and the rejects say why", highlight=False)
        raise typer.Exit(EXIT_EMPTY)
    if strict and summary.rejects:
        raise typer.Exit(EXIT_REJECTS)


class RateColumn(ProgressColumn):
    """A task's counted field and its rate, e.g. "1,200 pages 35.2 pages/s"; the task names the
    field in its `rate` field (tasks of several stages share one display)."""

    def render(self, task: Task) -> Text:
        field = task.fields.get("rate", "")
        n = task.fields.get(field, 0)
        elapsed = task.elapsed or 0
        rate = n / elapsed if elapsed > 0 else 0.0
        unit = task.fields.get("rate_unit", field)
        return Text(f"{n:,} {unit} {rate:,.1f} {unit}/s", style="cyan")


def progress_bar(enabled: bool) -> Progress:
    """One display for any number of stage bars: done out of total in the task's `unit`, and the
    rate of its counted field; heartbeat lines instead where stderr is not a terminal
    (docsynth.cli.unattended), --json or not."""
    return Bars(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=err, enabled=enabled, transient=False,
    )


def task_of(bar: Progress, task_id):
    return next(t for t in bar.tasks if t.id == task_id)


def stop_when_done(bar: Progress, task_id) -> None:
    """Freeze a finished task's clock, so its rate stays true while other stages go on."""
    t = task_of(bar, task_id)
    if t.total is not None and t.completed >= t.total:
        bar.stop_task(task_id)
