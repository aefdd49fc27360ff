"""`docsynth run RECIPE [--out DIR] [--force STAGE]` and `docsynth rejects RUN`."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.cli.unattended import run_log
from docsynth.cli import generate as generate_cli
from docsynth.cli import ingest as ingest_cli
from docsynth.cli import verify as verify_cli
from docsynth.cli import write as write_cli
from docsynth.cli.bars import StageBars
from docsynth.core.objstore import run_directory
from docsynth.core.records import read_rejects, reject_counts
from docsynth.core.rundir import REJECT_FILES
from docsynth import api


def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML: inputs, ingest, generate, filters, write.")],
    out: Annotated[str | None, typer.Option("--out", "-o", help=(
        "Run directory (default: runs/<recipe name>), or an s3:// / gs:// URL: worked in a local copy, each task "
        "committed to the bucket as it finishes (shard, then marker), the rest uploaded at the end."))] = None,
    force: Annotated[list[str] | None, typer.Option("--force", help=f"Redo a stage ({', '.join(api.stage_names())}); repeatable.")] = None,
    show: Annotated[int, typer.Option(help="After the run, print this many samples with their pairs.")] = 3,
    executor: Annotated[str, typer.Option(help=(
        "local: this machine (ingest in a process pool beside the engine); ray: ingest tasks and vLLM engine "
        "actors on a Ray cluster through Ray Data (the recipe's ray section; extra .[ray])."))] = "local",
    address: Annotated[str | None, typer.Option(help=(
        "With --executor ray: the cluster (auto, ray://host:10001); default ray.address, RAY_ADDRESS, else a local Ray."))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary of every stage instead of tables.")] = False,
    strict: common.StrictOption = False,
    set_: common.SetOption = None,
    limit: common.LimitOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=(
        "Print the plan and stop: documents, pages (and those OCR would read), samples by template, the model "
        "requests of generate and verify and their prompt tokens; reads the inputs' text layers, writes nothing, "
        "starts no engine."))] = False,
) -> None:
    """Run a whole recipe: ingest -> generate -> (verify) -> filter -> write the Cauldron dataset.

    Everything lives in the run directory: the resolved recipe, each stage's shards, manifests and
    rejects, the dataset in OUT/dataset, and OUT/run.json. A stage's finished work is reused while
    its config and inputs are unchanged: changing only the filters redoes only the writing, and
    changing a prompt reuses the ingest. An interrupted run resumes where it stopped. Exit code 0
    when it finished, whatever was rejected (see docsynth rejects OUT); 3 with --strict if anything
    was; 4 if the dataset is empty.
    """
    with common.failures(), common.engines_stopped():
        r, base = common.recipe_with(recipe, common.settings(set_, limit))
        api.check_engines(r)  # a typo in an engine key, before ingest runs for it
        if dry_run:
            plan = api.plan(r, base=base)
    if dry_run:
        common.report(plan, json_out, lambda: _print_plan(plan), plan=True)
        return
    with common.failures(), common.engines_stopped():
        out = out or str(Path("runs") / r.name)
        with run_directory(out) as local, run_log(local):
            s = _run_with_bars(r, base, local, force or [], json_out, executor, address)
    common.report(s, json_out, lambda: _print_summary(s, show), strict=strict)


def _print_plan(p) -> None:
    t = Table(title=f"plan of {p.recipe} (--dry-run: nothing written, no engine started)", show_header=False,
              title_justify="left")
    t.add_row("documents", f"{p.documents:,}" + (f"  ({p.documents_unreadable:,} unreadable)" if p.documents_unreadable else ""))
    t.add_row("pages", f"{p.pages:,}" + (f"  ({p.pages_to_ocr:,} need OCR: not in the figures below)" if p.pages_to_ocr else ""))
    if p.pages_gated:
        t.add_row("left out by the page gate", ", ".join(f"{k}: {v:,}" for k, v in p.pages_gated.items()))
    t.add_row("samples", f"{p.samples:,}  " + ", ".join(f"{k}: {v:,}" for k, v in p.templates.items()))
    t.add_row("generate", f"{p.generate_requests:,} requests, {p.prompt_tokens:,} prompt tokens ({p.tokens_from}), "
                          f"up to {p.max_output_tokens:,} output tokens each; {p.pairs_asked:,} pairs asked")
    t.add_row("verify", f"{p.verify_requests:,} requests" if p.verify_requests else "off")
    t.add_row("model requests", f"{p.model_requests:,} to {p.model} (context {p.context:,})")
    common.out.print(t)


# How each stage's summary is shown, by the stage's name in the pipeline: one line a stage. A
# stage docsynth does not know (a plugin's, tests/stage_example) is shown as its counts.
PRINTERS = {
    "ingest": lambda summary, show: ingest_cli.print_summary(summary, 0),
    "generate": generate_cli.print_summary,
    "verify": lambda summary, show: verify_cli.print_summary(summary),
    "write": lambda summary, show: write_cli.print_summary(summary),
}


def _print_summary(s, show: int) -> None:
    for name, summary in s.stages.items():
        PRINTERS.get(name, lambda summary, show, name=name: _print_counts(name, summary))(summary, show)


def _print_counts(name: str, summary) -> None:
    t = Table(title=name, show_header=False, title_justify="left")
    for k, v in summary.to_dict().items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            t.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    common.out.print(t)


def _run_with_bars(r, base: Path, out: Path, force: list[str], quiet: bool, executor: str = "local",
                   address: str | None = None):
    """The run under one display: the ingest and generate bars move together, on either executor."""
    with common.progress_bar(not quiet) as bar:
        return api.run(r, out, base=base, force=force, progress=StageBars(bar), executor=executor, address=address)


def rejects(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (or an ingest/generate output).")],
    stage: Annotated[str | None, typer.Option(help=f"Only this stage: {', '.join(REJECT_FILES)}.")] = None,
    limit: Annotated[int, typer.Option(help="Rejects listed per stage (0: counts only).")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print every reject as a JSON line.")] = False,
) -> None:
    """What a run rejected, and why: counts by stage and reason, then the rejects themselves."""
    with common.failures():
        stages = [stage] if stage else list(REJECT_FILES)
        unknown = [x for x in stages if x not in REJECT_FILES]
        if unknown:
            raise common.DocsynthError(f"--stage: no stage '{unknown[0]}' (stages: {', '.join(REJECT_FILES)})")
        found = [x for x in stages if (run_dir / REJECT_FILES[x]).exists()]
        if not found:
            raise common.DocsynthError(f"{run_dir} holds no rejects files ({', '.join(REJECT_FILES.values())})")
    counts = reject_counts(run_dir, found)  # the figures docsynth stats shows
    for name in found:
        if json_out:
            for _, row in read_rejects(run_dir, [name]):
                typer.echo(json.dumps({"stage": name, **row}, ensure_ascii=False))
            continue
        common.out.print(f"[bold]{name}[/bold]: {sum(counts[name].values()):,} rejected  "
                         + ", ".join(f"{k}: {v:,}" for k, v in counts[name].items()), highlight=False)
        for _, row in islice(read_rejects(run_dir, [name]), limit):
            where = Path(row["source"]).name + ("" if row.get("page") is None else f" page {row['page']}")
            common.out.print(f"  {where}: {row['reason']}", highlight=False, markup=False)
