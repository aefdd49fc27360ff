"""`docsynth push DIR --repo-id ORG/NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ByteSize, TypeAdapter, ValidationError
from rich.table import Table

from docsynth.cli import common
from docsynth.hub import push as run_push


class _Bar:
    def __init__(self, bar) -> None:
        self.bar, self.task = bar, None

    def __call__(self, sent: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("push", total=max(1, total // 1_000_000), unit="MB", mb=0, rate="mb",
                                          rate_unit="MB")
        self.bar.update(self.task, completed=sent // 1_000_000, mb=sent // 1_000_000)


def push(
    directory: Annotated[Path, typer.Argument(help="A dataset or mixture directory (data/train-*.parquet and README.md).")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="The dataset repo, ORG/NAME (created if missing).")] = ...,
    private: Annotated[bool, typer.Option(help="Create the repo private (an existing repo keeps its visibility).")] = False,
    revision: Annotated[str, typer.Option(help="The branch to push to (created from main if missing).")] = "main",
    config_name: Annotated[str | None, typer.Option(help=(
        "Push as this config of the repo (files under NAME/), the way The Cauldron holds one config per source; "
        "the repo's card then lists every config."))] = None,
    commit_files: Annotated[int, typer.Option(help="Files per commit at most.")] = 50,
    commit_bytes: Annotated[str, typer.Option(help="Bytes per commit at most, e.g. 4GB.")] = "4GB",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent, in which commits; send nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of a table.")] = False,
) -> None:
    """Publish a dataset or mixture to the Hugging Face Hub.

    Creates the dataset repo if needed, uploads the shards in commits of at most --commit-files
    files and --commit-bytes bytes, then the dataset card. A shard already in the repo with the
    same sha256 is not sent again, so an interrupted push resumes when run again. The token comes
    from HF_TOKEN or `hf auth login` and is never printed. HF_ENDPOINT points at another Hub.
    """
    with common.failures():
        try:
            limit = int(TypeAdapter(ByteSize).validate_python(commit_bytes))
        except ValidationError:
            raise common.DocsynthError(f"--commit-bytes: '{commit_bytes}' is not a size (e.g. 500MB, 4GB)") from None
        with common.progress_bar(not json_out and not dry_run) as bar:
            s = run_push(directory, repo_id, private=private, revision=revision, config=config_name, dry_run=dry_run,
                         commit_files=commit_files, commit_bytes=limit, progress=_Bar(bar))
    common.report(s, json_out, lambda: _print(s))


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
