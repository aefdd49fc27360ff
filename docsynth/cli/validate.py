"""`docsynth validate RECIPE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docsynth.cli import common
from docsynth.config.section import read_yaml
from docsynth.core.errors import DocsynthError
from docsynth.config.mixture import load_mixture
from docsynth.config.recipe import dump_recipe, load_recipe
from docsynth.core.resources import shipped_recipe, shipped_recipes
from docsynth import api
from docsynth.api.show import recipe_templates


def validate(
    recipe: Annotated[str, typer.Argument(metavar="RECIPE", show_default=False, help=(
        "A recipe or mixture YAML file, or a shipped one's name (`docsynth recipes list`: "
        "quickstart, mixtures/docs)."))],
    json_out: Annotated[bool, typer.Option("--json", help=(
        "Print JSON on stdout: the resolved file, or {\"valid\": false, \"errors\": [...]}."))] = False,
) -> None:
    """Check a recipe or a mixture file without running it: unknown keys (with the nearest valid
    key), types, ranges, that a recipe's prompt templates exist and are well formed, and that its
    engine sections' keys are vLLM engine arguments (where vLLM is installed).

    Prints the resolved file, every default filled in. Exit code 2 if it is invalid.
    """
    invalid = None
    with common.failures():
        path = _path(recipe)
        try:
            kind, resolved, text = _check(path)
        except DocsynthError as e:
            if not json_out:
                raise
            invalid = str(e).splitlines()
    if invalid is not None:  # --json: the errors are the result, on stdout
        common.print_json({"valid": False, "file": str(path), "error": invalid[0],
                           "errors": [ln.strip().removeprefix("- ") for ln in invalid[1:]] or invalid})
        raise typer.Exit(common.EXIT_USAGE)
    if json_out:
        common.print_json({"valid": True, "kind": kind, kind: resolved})
    else:
        common.err.print(f"[green]ok[/green]: {path} is a valid {'mixture file' if kind == 'mixture' else kind}")
        common.out.print(text, end="", highlight=False, markup=False)


def _path(name: str) -> Path:
    """A file as given, else the shipped recipe of that name."""
    key = name.removesuffix(".yaml")
    if not Path(name).exists() and key in shipped_recipes():
        return shipped_recipe(key).path
    return Path(name)


def _check(path: Path) -> tuple[str, dict, str]:
    """("recipe" | "mixture", the resolved file as JSON data, as YAML)."""
    data = read_yaml(path, "recipe")
    if isinstance(data, dict) and "sources" in data:  # a mixture file (docsynth mix)
        m, _ = load_mixture(path)
        resolved = m.model_dump(mode="json")
        import yaml

        return "mixture", resolved, yaml.safe_dump(resolved, sort_keys=False)
    r, base = load_recipe(path)
    recipe_templates(r.generate, base)
    api.check_engines(r)
    return "recipe", r.model_dump(mode="json"), dump_recipe(r)
