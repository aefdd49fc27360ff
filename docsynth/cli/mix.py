"""`docsynth mix MIXTURE.yaml --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth import api
from docsynth.api.show import filtered_text, plan_summary
from docsynth.config.section import parse_config
from docsynth.config.mixture import Mixture, load_mixture


class _Bar:
    """The read phase in MB (and MB/s), the write phase in shards."""

    def __init__(self, bar) -> None:
        self.bar, self.tasks = bar, {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        mb = phase == "read"
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task("read sources" if mb else "write shards", unit="MB" if mb else "shards",
                                                  total=total // 1_000_000 if mb else total, mb=0, shards=0,
                                                  rate="mb" if mb else "shards", rate_unit="MB" if mb else "shards")
        fields = {"mb": done // 1_000_000} if mb else {"shards": done}
        self.bar.update(self.tasks[phase], completed=done // 1_000_000 if mb else done, **fields)
        common.stop_when_done(self.bar, self.tasks[phase])


def mix(
    mixture: Annotated[Path, typer.Argument(help="Mixture YAML: sources, each with weight, repeat or max_samples.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory of the mixture (created).")] = ...,
    seed: Annotated[int | None, typer.Option(help="Override the mixture's seed.")] = None,
    total: Annotated[int | None, typer.Option(help="Override the mixture's total rows.")] = None,
    spill_dir: Annotated[Path | None, typer.Option(help=(
        "Where the spill goes (about the mixture's size while it runs; default OUT/.spill). It is written "
        "and read once; on OUT's file system each shard is written over a spill file already read, "
        "elsewhere to a new file."))] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Open and check every source and print what each would give; write nothing."))] = False,
    fmt: Annotated[str | None, typer.Option("--format", help=(
        "Override the mixture's format: cauldron (images, texts) or messages (images and chat messages, what "
        "TRL's VLM SFT takes)."))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of a table.")] = False,
    strict: common.StrictOption = False,
) -> None:
    """Merge Cauldron-style sources into one weighted, shuffled, sharded training mixture.

    Every source is opened and its schema checked before anything is written (a source not in
    the Cauldron schema needs an `adapter:`). Each gives the rows its weight, repeat or
    max_samples asks for (without replacement until it is exhausted, then by repeat); the rows
    are shuffled globally with the seed and written as OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet with
    OUT/mixture.json (requested vs realised counts and shares, shards with sha256) and a card
    OUT/README.md. Memory stays bounded by about one shard. The same inputs and seed give
    byte-identical shards. Exit code 3 if rows were left out for broken images, with --strict; 4
    if the mixture has no rows.
    """
    with common.failures():
        m, _ = load_mixture(mixture)
        given = {k: v for k, v in {"seed": seed, "total": total, "format": fmt}.items() if v is not None}
        if given:  # validated like the file: --total 0 is a usage error
            m = parse_config(Mixture, {**m.model_dump(), **given}, f"{mixture} with the command-line options", "mixture")
        if dry_run:
            s = plan_summary(m, out)
        else:
            with common.progress_bar(not json_out) as bar:
                s = api.mix(m, out, spill_dir=spill_dir, progress=_Bar(bar))
    common.report(s, json_out, lambda: print_summary(s), strict=strict, plan=dry_run)


def print_summary(s) -> None:
    t = Table(title=f"mixture {s.name} -> {s.out_dir}", title_justify="left")
    for col in ("source", "available", "requested", "realised", "share", "epochs", "broken", "filtered"):
        t.add_column(col, justify="left" if col in ("source", "filtered") else "right")
    for r in s.sources:
        t.add_row(r.name, f"{r.rows_available:,}", f"{r.requested:,}", f"{r.realised:,}",
                  f"{100 * r.realised_share:.2f}%", f"{r.epochs:.2f}", f"{r.broken_images:,}" if r.broken_images else "",
                  filtered_text(r))
    common.out.print(t, highlight=False)
    if not s.shards:
        common.out.print(f"dry run: {s.requested:,} rows planned, about {s.bytes / 1e6:,.1f} MB; nothing written",
                         highlight=False)
        return
    mbs = s.bytes_read / 1e6 / s.seconds if s.seconds else 0
    common.out.print(f"{s.rows:,} rows in {len(s.shards)} shards ({s.bytes / 1e6:,.1f} MB), seed {s.seed}; "
                     f"{s.seconds:.1f} s, {mbs:,.1f} MB/s read", highlight=False)
