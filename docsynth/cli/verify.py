"""`docsynth verify RUN --recipe R` and `docsynth verify --pairs FILE --recipe R`."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from docsynth.cli import common
from docsynth.cli.bars import StageBars
from docsynth.core.errors import UsageError
from docsynth import api


def verify(
    run_dir: Annotated[Path | None, typer.Argument(help="A run directory (or generate output) to verify.")] = None,
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (its verify section).")] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help=(
        "Instead of a run: a JSONL file of {\"question\", \"answer\", \"context\"} records (an optional "
        "\"label\" is passed through); prints a verdict per record."))] = None,
    model: Annotated[str | None, typer.Option(help="Override verify.model.")] = None,
    backend: Annotated[str | None, typer.Option(help="Override verify.backend: vllm | openai.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Override verify.openai.base_url (with --backend openai).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON: a summary, or with --pairs one verdict per line.")] = False,
    strict: common.StrictOption = False,
) -> None:
    """Check generated pairs by a round trip: the verifier model answers each question from the
    page text alone, and its answer is compared with the generated one (numbers, dates and units
    must agree; then exact, containment or token F1 >= verify.min_f1).

    On a run directory it writes RUN/verdicts (one shard per candidate shard, resumable) and
    RUN/verify-manifest.json; docsynth write then records the verdicts, the `verified` filter acts
    on them, and the card gets a Quality section. The verifier is verify.model, else the
    generator's model on the same engine. With --pairs nothing is written.
    """
    with common.failures(), common.engines_stopped():
        if (run_dir is None) == (pairs is None):
            raise UsageError("give a run directory or --pairs FILE (one of them)")
        overrides = {"verify.enabled": True, "verify.model": model, "verify.backend": backend,
                     "verify.openai.base_url": base_url}
        r, base = common.recipe_with(recipe, overrides)
        if pairs is not None:
            return _pairs(r, base, pairs, json_out)
        with common.progress_bar(not json_out) as bar:
            summary = api.run_verify(r, run_dir, base=base, progress=StageBars(bar))
    common.report(summary, json_out, lambda: print_summary(summary), strict=strict)


def _pairs(r, base: Path, path: Path, json_out: bool) -> None:
    from docsynth.api.show import check_pairs, read_pairs

    records, problems = read_pairs(path)
    for p in problems:
        where = f"{path}:{p['line']}: {p['error']}"  # the file's text: escaped, never read as markup
        common.err.print(f"[yellow]skipped[/yellow] {escape(where)}", highlight=False)
    if not records:
        raise common.DocsynthError(f"--pairs {path}: no usable records")
    verdicts = list(check_pairs(r.verify, r.generate, r.seed, base, records))
    if json_out:
        for v in verdicts:
            typer.echo(json.dumps(v, ensure_ascii=False))
        return
    t = Table(title=f"verify {path}", title_justify="left")
    judged = r.verify.judge
    for col in ("line", "agree", "how", "question", "answer", "verifier", *(("rel/cor/fmt", "judge") if judged else ())):
        t.add_column(col)
    for v in verdicts:
        scores = v.get("ratings") or {}
        t.add_row(str(v["line"]), {True: "yes", False: "no", None: "-"}[v["agree"]], v["how"], v["question"],
                  v["answer"], v["reanswer"] or "",
                  *(("/".join("-" if scores.get(a) is None else str(scores[a])
                              for a in ("relevance", "correctness", "formatting")), v.get("judge_reason") or "")
                    if judged else ()))
    common.out.print(t, highlight=False, markup=False)
    c = Counter(v["agree"] for v in verdicts)
    common.out.print(f"{c[True]:,} agree, {c[False]:,} disagree, {c[None]:,} unchecked of {len(verdicts):,}",
                     highlight=False)


def print_summary(s) -> None:
    t = Table(title=f"verify -> {s.out_dir}", show_header=False, title_justify="left")
    t.add_row("verifier", s.model)
    t.add_row("pairs", f"{s.pairs:,} in {s.samples:,} samples ({s.tasks} tasks, {s.tasks_skipped} reused)")
    t.add_row("verified", f"{s.agreed:,} of {s.checked:,} checked agree ({s.verified_share:.0%})")
    if s.checks:
        t.add_row("checks", ", ".join(f"{c} {k['agreed']:,}/{k['checked']:,}" for c, k in s.checks.items()))
    t.add_row("disagree", ", ".join(f"{k}: {v:,}" for k, v in s.disagreed.items()) or "none")
    t.add_row("unchecked", ", ".join(f"{k}: {v:,}" for k, v in s.unchecked.items()) or "none")
    cached = sum(k.get("cached", 0) for k in s.run_tokens.values())
    t.add_row("tokens", f"{s.prompt_tokens:,} in, {s.output_tokens:,} out; {s.seconds:.1f} s"
              + (f"  ({cached:,} prompt tokens from the engine's prefix cache this run)" if cached else ""))
    common.out.print(t, highlight=False)
