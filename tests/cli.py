"""The one way tests run the command line: `invoke(*args, cwd=, env=)` (the `cli` fixture of
tests/conftest.py) runs it in this process through click's runner, as `docsynth ARGS` would, with
the folder and environment a test gives, and returns a CompletedProcess-like result
(returncode, stdout, stderr). A test runs a real process instead (`subprocess_cli`) only where a
process matters: signals, a kill, a second process on the same directory, what a child process
inherits, or an installed wheel."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


@dataclass(slots=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@contextmanager
def _isolated(cwd: Path | None, env: dict[str, str] | None):
    """The folder, the environment and the logging set-up as they were, after the command (the
    CLI sets up logging for the process, as it should where it owns one)."""
    old_cwd, old_env = Path.cwd(), dict(os.environ)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = logging.getLogger("docsynth")
    our_level = ours.level
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env:
            os.environ.update(env)
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)
        root.handlers[:] = handlers
        root.setLevel(level)
        ours.setLevel(our_level)


def invoke(*args: str, cwd: Path | None = ROOT, env: dict[str, str] | None = None) -> Result:
    from docsynth.cli import _verbosity_first, app
    from docsynth.cli.metavars import plain_metavars
    import typer

    command = plain_metavars(typer.main.get_command(app))
    with _isolated(cwd, env):
        r = CliRunner().invoke(command, _verbosity_first([str(a) for a in args]), prog_name="docsynth",
                               catch_exceptions=False)
    return Result(r.exit_code, r.stdout, r.stderr)


def subprocess_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                   timeout: float | None = None) -> subprocess.CompletedProcess:
    """`python -m docsynth.cli ARGS` as a real process."""
    return subprocess.run([sys.executable, "-m", "docsynth.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout)


def argv(*args: str) -> list[str]:
    """The command line of a real `docsynth ARGS` process, for a test that starts and kills one."""
    return [sys.executable, "-m", "docsynth.cli", *map(str, args)]
