"""`docsynth validate RECIPE`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docsynth.cli import common
from docsynth.generate.prompts import recipe_templates
from docsynth.core.recipe import dump_recipe, load_recipe


def validate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file to check.", show_default=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the resolved recipe as JSON.")] = False,
) -> None:
    """Check a recipe without running it: unknown keys (with the nearest valid key), types, ranges,
    and that its prompt templates exist and are well formed.

    Prints the resolved recipe, every default filled in. Exit code 2 if it is invalid.
    """
    with common.failures():
        r, base = load_recipe(recipe)
        recipe_templates(r.generate, base)
    if json_out:
        common.print_json({"valid": True, "recipe": r.model_dump(mode="json")})
    else:
        common.err.print(f"[green]ok[/green]: {recipe} is a valid recipe")
        common.out.print(dump_recipe(r), end="", highlight=False, markup=False)
