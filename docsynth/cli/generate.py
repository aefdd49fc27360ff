"""`docsynth generate PAGES_DIR --recipe R --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.cli.bars import StageBars
from docsynth import api
from docsynth.api.show import GROUNDED_AT, sample_candidates


def generate(
    pages_dir: Annotated[Path, typer.Argument(help="An ingest output directory (the --out of docsynth ingest).")],
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (its generate section).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output directory (default: PAGES_DIR; rerunning resumes).")] = None,
    model: Annotated[str | None, typer.Option(help="Override generate.model.")] = None,
    backend: Annotated[str | None, typer.Option(help="Override generate.backend: vllm | openai.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Override generate.openai.base_url.")] = None,
    show: Annotated[int, typer.Option(help="After the run, print this many samples with their pairs.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
    strict: common.StrictOption = False,
    set_: common.SetOption = None,
) -> None:
    """Ask an LLM for question/answer pairs about every ingested page.

    Pages are grouped into samples (up to generate.max_pages_per_sample consecutive pages of
    one document), each sample gets one of the recipe's prompt templates, and the model's
    output is parsed into pairs. Writes OUT/candidates (page images, pairs, and provenance:
    template, model, sampling, raw output), OUT/generate-rejects.jsonl (with the raw output of
    each sample that gave no usable pairs) and OUT/generate-manifest.json. Completed tasks are
    kept when the command runs again. Exit code 0 when it finished (3 with --strict if any sample
    was rejected; 4 if no pair was made).
    """
    with common.failures(), common.engines_stopped():
        options = {"generate.model": model, "generate.backend": backend, "generate.openai.base_url": base_url}
        r, base = common.recipe_with(recipe, common.settings(set_) | common.given(options))
        api.check_engines(r)  # a typo in an engine key, before ingest runs for it
        with common.progress_bar(not json_out) as bar:
            summary = api.run_generate(r, pages_dir, out or pages_dir, base=base, progress=StageBars(bar))
    common.report(summary, json_out, lambda: print_summary(summary, show), strict=strict)


def print_summary(s, show: int) -> None:
    t = Table(title=f"generate -> {s.out_dir}", show_header=False, title_justify="left")
    t.add_row("model", s.model)
    t.add_row("samples", f"{s.samples:,} with pairs: {s.samples_ok:,}  ({s.tasks} tasks, "
                         f"{s.tasks_skipped} reused from an earlier run)")
    t.add_row("pairs", f"{s.pairs:,}  {s.pairs_per_page:.2f} per page over {s.pages:,} pages")
    if s.pages_gated:
        t.add_row("gated", f"{sum(s.pages_gated.values()):,} pages not asked about: "
                           + ", ".join(f"{k}: {v}" for k, v in s.pages_gated.items()))
    t.add_row("grounded", f"{s.grounded_share:.0%} of answers found in their page text (exact, or fuzzy >= {GROUNDED_AT})")
    t.add_row("templates", ", ".join(f"{k}: {v}" for k, v in s.templates.items()))
    t.add_row("rejected", f"{s.rejects:,}  " + ", ".join(f"{k}: {v}" for k, v in s.reject_reasons.items()))
    t.add_row("tokens", f"{s.prompt_tokens:,} in, {s.output_tokens:,} out; {s.output_tokens_per_s:,.1f} tokens/s "
                        f"generated now; {s.seconds:.1f} s in all")
    if s.rejects:
        t.add_row("rejects", s.rejects_file)
    common.out.print(t, highlight=False)
    if show:
        common.out.print("\n[bold]sample QA pairs[/bold]")
        for c in sample_candidates(Path(s.out_dir), show):
            pages = ",".join(str(p) for p in c["pages"])
            common.out.print(f"[cyan]{Path(c['source']).name}[/cyan] pages {pages}  template {c['template']}",
                             highlight=False)
            for q, a in zip(c["questions"], c["answers"]):
                common.out.print(f"  Q: {q}\n  A: {a}", highlight=False, markup=False)
