"""`docsynth ingest INPUT... --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.cli.unattended import run_log
from docsynth.cli.bars import StageBars
from docsynth import api
from docsynth.api.show import sample_pages
from docsynth.core.objstore import run_directory
from docsynth.config.recipe import OcrMode


def ingest(
    inputs: Annotated[list[str] | None, typer.Argument(
        help="PDF files, directories (recursive), globs, parquet files/directories with a PDF column, WebDataset "
             ".tar shards; or any of these at s3://, gs://, hf://, https:// URLs. Default: the recipe's inputs.paths.",
        show_default=False)] = None,
    out: Annotated[str, typer.Option("--out", "-o", help=(
        "Output directory (created; rerunning resumes), or an s3:// / gs:// URL: worked in a local copy, each task "
        "committed to it as it finishes."))] = ...,
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (inputs and ingest sections).")] = None,
    ocr: Annotated[OcrMode | None, typer.Option(help="Override ingest.ocr.mode: auto | always | never.")] = None,
    lang: Annotated[str | None, typer.Option(help="Override ingest.ocr.languages, e.g. fra+eng.")] = None,
    dpi: Annotated[int | None, typer.Option(help="Override ingest.dpi.")] = None,
    workers: Annotated[int | None, typer.Option(help="Override ingest.workers (default: all cores).")] = None,
    show: Annotated[int, typer.Option(help="After the run, print this many sample pages.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
    strict: common.StrictOption = False,
    set_: common.SetOption = None,
    limit: common.LimitOption = None,
) -> None:
    """Render every page and read its text: the text layer first, tesseract OCR where it is missing.

    Writes per-task parquet shards of pages to OUT/pages, every rejected file or page with its
    reason to OUT/rejects.jsonl, and OUT/manifest.json. Completed tasks are skipped when the same
    command runs again, so an interrupted run resumes. Exit code 0 when it finished (3 with
    --strict if anything was rejected; 4 if no page was read).
    """
    with common.failures():
        options = {"inputs.paths": inputs or None, "ingest.ocr.mode": ocr.value if ocr else None,
                   "ingest.ocr.languages": lang, "ingest.dpi": dpi, "ingest.workers": workers}
        r, base = common.recipe_with(recipe, common.settings(set_, limit) | common.given(options))
        if inputs:
            base = Path.cwd()
        if not r.inputs.paths:
            raise common.DocsynthError("no inputs: give INPUT paths or set inputs.paths in the recipe")
        with run_directory(out) as local, run_log(local), common.progress_bar(not json_out) as bar:
            summary = api.run_ingest(r, local, base=base, progress=StageBars(bar))
    common.report(summary, json_out, lambda: print_summary(summary, show), strict=strict)


def print_summary(s, show: int) -> None:
    t = Table(title=f"ingest -> {s.out_dir}", show_header=False, title_justify="left")
    t.add_row("documents", f"{s.docs:,}  ({s.tasks} tasks, {s.tasks_skipped} reused from an earlier run)")
    t.add_row("pages", f"{s.pages:,}  " + ", ".join(f"{k}: {v:,}" for k, v in s.pages_by_source.items()))
    if s.pages_by_reader:
        t.add_row("reading order", ", ".join(f"{k}: {v:,}" for k, v in s.pages_by_reader.items()))
    t.add_row("rejected", f"{s.rejects:,}  " + ", ".join(f"{k}: {v}" for k, v in s.reject_reasons.items()))
    if any(s.duplicates.values()):
        t.add_row("near-duplicates", f"{s.duplicates['documents']:,} documents, {s.duplicates['pages']:,} pages "
                                     "(each names the copy kept in the rejects)")
    t.add_row("time", f"{s.seconds:.1f} s, {s.pages_this_run:,} pages rendered now at {s.pages_per_s:.1f} pages/s")
    if s.rejects:
        t.add_row("rejects", s.rejects_file)
    common.out.print(t)
    if show:
        common.out.print("\n[bold]sample pages[/bold]")
        for p in sample_pages(Path(s.out_dir), show):
            text = " ".join(p["text"].split())
            conf = f" ({p['ocr_confidence']:.0f}% confidence)" if p["ocr_confidence"] else \
                f" (ordered by {p['reader']})" if p.get("reader") else ""
            common.out.print(f"[cyan]{Path(p['source']).name}[/cyan] page {p['page']}  "
                             f"{p['width']}x{p['height']} {p['image_format']}  text from {p['text_source']}{conf}",
                             highlight=False)
            common.out.print("  " + (text[:240] + (" ..." if len(text) > 240 else "") or "(no text)"),
                             highlight=False, markup=False)
