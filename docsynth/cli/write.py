"""`docsynth write RUN_DIR [--recipe R] [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth import api


def write(
    run_dir: Annotated[Path, typer.Argument(help="A run directory holding generate's candidates/.")],
    recipe: Annotated[Path | None, typer.Option("--recipe", "-r", help="Recipe YAML (its filters and write sections).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Dataset directory (default: RUN_DIR/dataset).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of a table.")] = False,
) -> None:
    """Filter the QA pairs and write the dataset in the Cauldron schema.

    Applies the recipe's filters to every pair (each drop, with its reason, goes to
    RUN_DIR/filter-rejects.jsonl; a sample left with no pair is dropped), then writes
    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet (images, texts of user/assistant/source)
    and a dataset card OUT/README.md that datasets.load_dataset(OUT) and the Hub read. Each
    version (VVVVVVVV) is written in a hidden folder and swapped with OUT/data in one step, so a
    reader (through the card, data_dir=OUT or a glob of OUT/data/*.parquet) sees the old
    dataset or the new one, never a mix, even after a kill. Nothing is rewritten when the
    candidates, filters and write settings are unchanged.
    """
    with common.failures():
        r, base = common.recipe_with(recipe, {})
        s = api.run_write(r, run_dir, out, base=base)
    if json_out:
        common.print_json(s.to_dict())
    else:
        print_summary(s)


def print_summary(s) -> None:
    t = Table(title=f"dataset -> {s.out_dir}", show_header=False, title_justify="left")
    t.add_row("samples", f"{s.samples_in:,} in, {s.samples_out:,} out ({s.samples_dropped:,} left with no pair)")
    t.add_row("pairs", f"{s.pairs_in:,} in, {s.pairs_out:,} out")
    t.add_row("dropped", ", ".join(f"{k}: {v:,}" for k, v in s.dropped.items()) or "none")
    t.add_row("verified", quality_line(s.quality))
    if s.quality.get("rated"):
        t.add_row("rated", "; ".join(f"{ax} " + " ".join(f"{k}:{v:,}" for k, v in h.items())
                                     for ax, h in s.quality["ratings"].items()) + "  (of the kept pairs)")
    t.add_row("shards", f"{s.shards} ({s.bytes / 1e6:,.1f} MB)" + ("  reused: nothing changed" if s.reused else ""))
    common.out.print(t, highlight=False)


def quality_line(q: dict) -> str:
    """The round trip's figures in one line (docsynth.write.verdicts)."""
    if not q.get("verified"):
        return "not verified (verify.enabled: false)"
    share = q["verified_share"]
    kept = q["kept_verified_share"]
    checks = ", ".join(q.get("checks") or {}) or "round trip"
    return (f"{share:.0%} of {q['checked']:,} checked pairs agreed ({checks})" if share is not None
            else "no pair checked") + \
        (f"; kept pairs: {q['kept_agreed']:,} of {q['kept_checked']:,} checked agreed ({kept:.0%})" if kept is not None
         else "") + f"  (verifier {q['model']})"
