"""`docsynth stats PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from docsynth.cli import common
from docsynth import api


def stats(
    path: Annotated[Path, typer.Argument(help="A dataset, mixture or run directory.")],
    tokenizer: Annotated[str | None, typer.Option(help="Count tokens with this Hugging Face tokenizer (a local folder).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Counts, per-source shares and distributions of a dataset, as terminal histograms.

    Samples, images, QA pairs (and tokens with --tokenizer); samples per source (the first word
    of each sample's `source`); question and answer lengths, QA turns and images per sample,
    image sizes; and, in a run directory, what each stage dropped and why, and how many pairs
    round-trip verification agreed with (docsynth verify). The dataset cards of
    docsynth write and docsynth mix carry the same figures.
    """
    with common.failures():
        s = api.stats(path, tokenizer)
    if json_out:
        common.print_json(s.to_dict())
        return
    o = common.out
    o.print(f"[bold]{path}[/bold]: {s.samples:,} samples, {s.images:,} images, {s.pairs:,} QA pairs"
            + (f", {s.tokens:,} tokens" if s.tokens is not None else "") + f", {s.bytes / 1e6:,.1f} MB", highlight=False)
    if s.unusable_rows:
        more = f" and {s.unusable_rows - len(s.unusable):,} more" if s.unusable_rows > len(s.unusable) else ""
        o.print(f"[yellow]{s.unusable_rows:,} rows a loader cannot use[/yellow] (docsynth export leaves them out):")
        for line in s.unusable:
            o.print(f"  {escape(line)}", highlight=False)
        if more:
            o.print(f"  {more.strip()}", highlight=False)
    if s.unreadable_images:
        o.print(f"[yellow]{s.unreadable_images:,} images whose size could not be read[/yellow]")
    t = Table(title="sources", title_justify="left")
    for c in ("source", "samples", "share", ""):
        t.add_column(c, justify="right" if c in ("samples", "share") else "left")
    for k, v in list(s.sources.items())[:40]:
        t.add_row(k or "(none)", f"{v:,}", f"{100 * v / max(s.samples, 1):.1f}%", _bar(v, max(s.sources.values())))
    o.print(t)
    for title, h in (("question length (chars)", s.question_chars), ("answer length (chars)", s.answer_chars),
                     ("image size (longer side, px)", s.image_side)):
        if h.n:
            _histogram(f"{title}: mean {h.mean:,.1f}, min {h.min:,.0f}, max {h.max:,.0f}",
                       list(zip(h.labels(), h.counts)))
    _histogram("QA turns per sample", [(str(k), v) for k, v in s.turns.items()])
    _histogram("images per sample", [(str(k), v) for k, v in s.images_per_sample.items()])
    if s.quality:
        from docsynth.cli.write import quality_line

        o.print(f"verified: {quality_line(s.quality)}", highlight=False)
        for axis, hist in (s.quality.get("ratings") or {}).items() if s.quality.get("rated") else ():
            _histogram(f"judge's {axis} ratings of the kept pairs (1-5)", list(hist.items()))
    for stage, reasons in s.rejects.items():
        if reasons:
            _histogram(f"dropped at {stage}, by reason", list(reasons.items()))


def _bar(n: int, top: int, width: int = 30) -> str:
    full = width * n / max(top, 1)
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def _histogram(title: str, rows: list[tuple[str, int]]) -> None:
    while rows and rows[-1][1] == 0:  # empty bins at the top end say nothing
        rows = rows[:-1]
    while rows and rows[0][1] == 0:
        rows = rows[1:]
    if not rows:
        return
    common.out.print(f"[bold]{title}[/bold]", highlight=False)
    t = Table(show_header=False, box=None, padding=(0, 1))
    top = max(v for _, v in rows)
    for label, v in rows:
        t.add_row(label, f"{v:,}", f"[cyan]{_bar(v, top)}[/cyan]")
    common.out.print(t)
