"""`docsynth push DIR --repo-id ORG/NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.config.section import parse_config
from docsynth.config.push import PushOptions
from docsynth import api


class _Bar:
    def __init__(self, bar) -> None:
        self.bar, self.task = bar, None

    def __call__(self, sent: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("push", total=max(1, total // 1_000_000), unit="MB", mb=0, rate="mb",
                                          rate_unit="MB")
        self.bar.update(self.task, completed=sent // 1_000_000, mb=sent // 1_000_000)


def push(
    directory: Annotated[Path, typer.Argument(help=(
        "A dataset or mixture directory (data/train-*.parquet and README.md), or any Cauldron-style folder of "
        "data/*.parquet (a card is then made from its statistics)."))],
    repo_id: Annotated[str, typer.Option("--repo-id", help="The dataset repo, ORG/NAME (created if missing).")] = ...,
    private: Annotated[bool | None, typer.Option("--private", help=_help("private"), show_default=False)] = None,
    revision: Annotated[str | None, typer.Option(help=_help("revision"), show_default=False)] = None,
    config_name: Annotated[str | None, typer.Option(help=_help("config") + "; the repo's card then lists every config.",
                                                    show_default=False)] = None,
    commit_files: Annotated[int | None, typer.Option(help=_help("commit_files"), show_default=False)] = None,
    commit_bytes: Annotated[str | None, typer.Option(help=_help("commit_bytes"), show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent, in which commits; send nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of a table.")] = False,
    strict: common.StrictOption = False,
) -> None:
    """Publish a dataset or mixture to the Hugging Face Hub.

    Creates the dataset repo if needed, uploads the shards in commits of at most --commit-files
    files and --commit-bytes bytes, then the dataset card. A shard already in the repo with the
    same sha256 is not sent again, so an interrupted push resumes when run again. The token comes
    from HF_TOKEN or `hf auth login` and is never printed. HF_ENDPOINT points at another Hub.
    """
    with common.failures():
        given = {"private": private, "revision": revision, "config": config_name, "commit_files": commit_files,
                 "commit_bytes": commit_bytes}
        options = parse_config(PushOptions, {k: v for k, v in given.items() if v is not None}, "command-line options",
                               "set of push options")
        with common.progress_bar(not json_out and not dry_run) as bar:
            s = api.push(directory, repo_id, options, dry_run=dry_run, progress=_Bar(bar))
    common.report(s, json_out, lambda: _print(s), strict=strict)


def _help(field: str) -> str:
    """A push option's help: its description and default, from PushOptions."""
    f = PushOptions.model_fields[field]
    default = f.default.human_readable(decimal=True) if hasattr(f.default, "human_readable") else f.default
    return f"{f.description[0].upper()}{f.description[1:]}" + ("" if default is None else f" (default: {default})")


def _print(s) -> None:
    verb = "would send" if s.dry_run else "sent"
    t = Table(title=f"{'dry run: ' if s.dry_run else ''}push -> {s.repo_id} ({s.revision})"
              + (f", config {s.config}" if s.config else ""), show_header=False, title_justify="left")
    t.add_row("repo", (s.url or s.repo_id) + ("  (created)" if s.created and not s.dry_run else
                                              "  (to be created)" if s.created else ""))
    t.add_row(verb, f"{len(s.uploads)} shards, {sum(u.size for u in s.uploads) / 1e6:,.1f} MB")
    t.add_row("already there", f"{len(s.skipped)} shards (same sha256, not sent)")
    if s.deleted:
        t.add_row("old shards removed", ", ".join(s.deleted))
    t.add_row("commits", "; ".join(f"{c['message']}: {c['files']} files, {c['bytes'] / 1e6:,.1f} MB" for c in s.commits) or "none")
    common.out.print(t, highlight=False)
