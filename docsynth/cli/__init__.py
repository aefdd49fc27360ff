"""The `docsynth` command line: a thin Typer app over the library."""

from __future__ import annotations

import logging
import re
import sys
from typing import Annotated

import typer

from docsynth import __version__
from docsynth.core.children import Terminated, signals_unwind
from docsynth.cli.metavars import plain_metavars
from docsynth.cli import (common, decontaminate, export, generate, ingest, mix, preview, prompts, push, recipes, run, stats,
                          validate, verify, write)

app = typer.Typer(
    name="docsynth",
    help=(
        "Synthetic vision-language training data from document collections, in the style of "
        "Docmatix and The Cauldron.\n\n"
        "Exit codes: 0 finished (whatever was rejected: the summary counts it, rejects.jsonl says why); "
        "1 error (nothing or only part was done; rerun resumes); 2 bad usage or invalid recipe; "
        "3 finished with rejects, with --strict; 4 finished, but nothing at all was produced; "
        "70 an unexpected failure (a bug: the message names the traceback's file)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docsynth {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug), to stderr.")] = 0,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Global options."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    common.setup_logging(level)


app.command("run")(run.run)
app.command("validate")(validate.validate)
app.command("ingest")(ingest.ingest)
app.command("generate")(generate.generate)
app.command("verify")(verify.verify)
app.command("write")(write.write)
app.command("rejects")(run.rejects)
app.command("mix")(mix.mix)
app.command("decontaminate")(decontaminate.decontaminate)
app.command("export")(export.export)
app.command("push")(push.push)
app.command("stats")(stats.stats)
app.command("preview")(preview.preview)
app.add_typer(prompts.app, name="prompts")
app.add_typer(recipes.app, name="recipes")


def _verbosity_first(argv: list[str]) -> list[str]:
    """`docsynth run r.yaml -v` as `docsynth -v run r.yaml`: -v is the app's option, which click
    only takes before the command; users put it anywhere (nothing after `--` is moved)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a == "--verbose" or re.fullmatch(r"-v+", a)]
    rest = [a for a in argv[:end] if not (a == "--verbose" or re.fullmatch(r"-v+", a))]
    return flags + rest + argv[end:]


def main() -> None:
    sys.argv[1:] = _verbosity_first(sys.argv[1:])
    common.results_only_on_stdout()
    # SIGTERM unwinds like Ctrl-C, and no process the command started outlives it.
    with signals_unwind():
        try:
            plain_metavars(typer.main.get_command(app))(prog_name="docsynth")
        except Terminated:  # before or after a command's own handling (argument parsing, exit)
            raise SystemExit(Terminated.exit_code) from None
