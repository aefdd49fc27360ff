"""`docsynth decontaminate DATASET --against EVAL... [--out DIR]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from docsynth.cli import common
from docsynth.config.section import parse_config, read_yaml
from docsynth.config.decontam import Action, DecontamConfig, EvalSet, ImageMatch
from docsynth.core.errors import UsageError
from docsynth import api
from docsynth.api.show import guess_adapter


def _section(config: Path | None) -> DecontamConfig:
    """The decontaminate: section of a recipe or mixture file (paths relative to it), or the defaults."""
    if config is None:
        return DecontamConfig()
    data = read_yaml(config, "configuration file")
    section = data.get("decontaminate") if isinstance(data, dict) else None
    if section is None:
        raise UsageError(f"{config} has no `decontaminate:` section")
    return parse_config(DecontamConfig, section, f"{config} (decontaminate)", "decontaminate section").resolved(
        config.resolve().parent)


def _against(values: list[str], split: str) -> list[EvalSet]:
    sets = []
    for v in values:
        name, _, path = v.rpartition("=") if "=" in v else ("", "", v)
        p = Path(path)
        sets.append(guess_adapter(EvalSet(name=name or p.name or path, path=p, split=split)))
    return sets


def decontaminate(
    dataset: Annotated[Path, typer.Argument(help="A docsynth dataset, mixture, or any Cauldron-style dataset folder.")],
    against: Annotated[list[str], typer.Option("--against", "-a", help=(
        "An evaluation set: a Cauldron-style dataset, parquet folder or file, save_to_disk or Hub-style folder; "
        "NAME=PATH names it. A table with image, question and answer(s) columns (DocVQA as released) is read "
        "with a qa adapter. Repeat for several."))] = [],  # noqa: B006 (typer's list option)
    config: Annotated[Path | None, typer.Option("--config", "-c", help=(
        "A recipe or mixture file whose `decontaminate:` section gives the sets, adapters and thresholds "
        "(--against adds sets to it)."))] = None,
    split: Annotated[str, typer.Option(help="The split of the --against sets.")] = "test",
    out: Annotated[Path | None, typer.Option("--out", "-o", help=(
        "Write a copy here: without the hits (--action drop) or with them (flag), with decontamination.jsonl "
        "and a card. Without it, only check and report."))] = None,
    action: Annotated[Action | None, typer.Option(help="drop: leave hits out of --out; flag: keep them.")] = None,
    max_distance: Annotated[int | None, typer.Option(help=(
        "64-bit image hashes this many bits apart or fewer are candidates "
        f"(0-15; default {ImageMatch.model_fields['max_distance'].default})."))] = None,
    cache: Annotated[Path | None, typer.Option(help=(
        "Where hashes are kept (default $DOCSYNTH_CACHE/hashes): a rerun, or a new evaluation set, "
        "does not decode the dataset's images again."))] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
    strict: common.StrictOption = False,
) -> None:
    """Find the samples of a dataset that copy an evaluation set.

    Page images are compared by perceptual hash, a 64-bit one to find candidates and a 256-bit
    one to confirm them (robust to re-encoding, resizing, small crops, greyscale and another
    dpi); questions, and question + answer, by normalised word n-gram overlap. Every evaluation set is opened and its schema checked before any work. An
    image hit marks the whole sample, a text hit its turn. Exit code 3 if anything matched, with --strict.
    """
    with common.failures():
        cfg = _section(config)
        updates = {"against": [*cfg.against, *_against(against, split)]}
        if action is not None:
            updates["action"] = action
        data = {**cfg.model_dump(mode="json"), **{k: v for k, v in updates.items() if k != "against"}}
        if max_distance is not None:
            data["images"] = {**data["images"], "max_distance": max_distance}
        cfg = parse_config(DecontamConfig, {**data, "against": [e.model_dump(mode="json") for e in updates["against"]]},
                           "command-line options", "decontaminate options")
        if not cfg.against:
            raise UsageError("no evaluation set: give --against PATH (or --config FILE with a decontaminate: section)")
        with common.progress_bar(not json_out) as bar:
            task = bar.add_task("decontaminate", total=None, unit="", rate="", rate_unit="")
            s = api.decontaminate(dataset, cfg, out, hashes=cache, progress=lambda what: bar.update(task, description=what))
        s.rejects = s.decontamination["rows_marked"] + s.decontamination["turns_marked"]
    common.report(s, json_out, lambda: _print(s), strict=strict)


def _print(s) -> None:
    d = s.decontamination
    t = Table(title=f"{s.dataset}: {s.rows_in:,} rows checked", title_justify="left")
    for c in ("evaluation set", "rows", "images", "questions", "image hits", "question hits", "q+a hits"):
        t.add_column(c, justify="left" if c == "evaluation set" else "right")
    for st in d["sets"]:
        h = d["hits"].get(st["name"], {})
        t.add_row(st["name"], f"{st['rows']:,}", f"{st['images']:,}", f"{st['questions']:,}",
                  *(f"{h.get(k, 0):,}" for k in ("image", "question", "question_answer")))
    common.out.print(t, highlight=False)
    common.out.print(f"samples with a page image in an evaluation set: {d['rows_marked']:,}; other turns that copy "
                     f"an evaluation question: {d['turns_marked']:,}", highlight=False)
    if s.out_dir:
        common.out.print(f"wrote {s.out_dir}: {s.rows_out:,} rows, {s.turns_out:,} turns ({d['action']}); every hit "
                         f"in {Path(s.out_dir) / 'decontamination.jsonl'}", highlight=False)
    else:
        common.out.print("nothing written (give --out DIR for a clean copy and the list of hits)", highlight=False)
    common.out.print(f"hashes: {s.hashes_made} files hashed, {s.hashes_reused} read back; {s.seconds:.1f} s",
                     highlight=False)
