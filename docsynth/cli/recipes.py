"""`docsynth recipes list | show NAME | init NAME DEST`."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from docsynth.cli import common
from docsynth.config.section import read_yaml
from docsynth.core.resources import BUILTIN, shipped_recipe, shipped_recipes

app = typer.Typer(help="The recipes and mixture files that ship with docsynth: list them, show one, copy one to start from.",
                  no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="A shipped recipe (quickstart) or mixture (mixtures/docs).", show_default=False)]


@app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every shipped recipe and mixture file, with what it is for."""
    with common.failures():
        found = list(shipped_recipes().values())
    if json_out:
        common.print_json([{"name": r.name, "kind": r.kind, "summary": r.summary, "path": str(r.path)} for r in found])
        return
    table = Table("name", "kind", "what it is for")
    for r in found:
        table.add_row(r.name, r.kind, escape(r.summary))
    common.out.print(table)
    common.out.print("docsynth recipes init NAME DEST copies one to start from", highlight=False)


@app.command("show")
def show(name: NameArg) -> None:
    """The file as shipped, comments included."""
    with common.failures():
        r = shipped_recipe(name)
    typer.echo(r.path.read_text(), nl=False)  # verbatim


@app.command("init")
def init(
    name: NameArg,
    dest: Annotated[Path, typer.Argument(help="Where to write it: a .yaml file, or a folder to write NAME.yaml into.",
                                         show_default=False)],
    force: Annotated[bool, typer.Option("--force", help="Overwrite DEST if it exists.")] = False,
) -> None:
    """Copy a shipped recipe to start from, comments included; then edit its inputs.

    Relative paths in a recipe resolve against the recipe's own folder, so the paths of the copy
    that pointed at files beside the shipped one (sample PDFs, a mixture's sources) are listed:
    point them at your own. Templates given as builtin:NAME keep working wherever the copy is.
    """
    with common.failures():
        r = shipped_recipe(name)
        target = dest if dest.suffix in (".yaml", ".yml") and not dest.is_dir() else dest / r.path.name
        if target.exists() and not force:
            raise common.DocsynthError(f"{target} exists; give --force to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(r.path, target)
        loose = _relative_paths(r.path, target)
    common.err.print(f"[green]wrote[/green] {target} (from the shipped {r.kind} {r.name})", highlight=False)
    for key, value in loose:
        common.err.print(f"[yellow]edit[/yellow] {key}: {value} (relative to {target.parent}; it does not exist there)",
                         highlight=False)


def _relative_paths(shipped: Path, target: Path) -> list[tuple[str, str]]:
    """(key, path) of every relative path of the recipe that does not exist beside the copy."""
    data = read_yaml(shipped, "recipe") or {}
    found = [(f"inputs.paths[{i}]", p) for i, p in enumerate((data.get("inputs") or {}).get("paths") or [])]
    found += [(f"sources[{i}].path", s.get("path", "")) for i, s in enumerate(data.get("sources") or [])]
    prompts = (data.get("generate") or {}).get("prompts_dir")
    if prompts and not prompts.startswith(BUILTIN):
        found.append(("generate.prompts_dir", prompts))
    return [(k, v) for k, v in found if v and not Path(v).is_absolute() and not glob.glob(str(target.parent / v))]
