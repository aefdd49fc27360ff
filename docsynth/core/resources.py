"""Files that ship with docsynth: the prompt templates and the recipes.

In an installed wheel they are package data (docsynth/prompts, docsynth/recipes, read with
importlib.resources); in a source checkout they are the repository's own prompts/ and recipes/
(pyproject.toml maps one onto the other when it builds the wheel).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from docsynth.core.errors import DocsynthError

BUILTIN = "builtin:"  # a prompts_dir of the shipped templates: builtin:base is prompts/base


def shipped(folder: str) -> Path:
    """The shipped folder `prompts` or `recipes`."""
    packaged = resources.files("docsynth") / folder
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / folder  # a source checkout (editable install)


def builtin_prompts(name: str) -> Path:
    """The shipped template folder a `builtin:NAME` prompts_dir names ("" is the main one)."""
    root = shipped("prompts")
    folder = (root / name).resolve() if name else root
    if root.resolve() not in (folder, *folder.parents) or not folder.is_dir():
        have = ", ".join(f"{BUILTIN}{p.name}" for p in sorted(root.iterdir()) if p.is_dir())
        raise DocsynthError(f"prompts_dir {BUILTIN}{name}: no such shipped template folder (have: {BUILTIN}, {have})")
    return folder


@dataclass(slots=True, frozen=True)
class ShippedRecipe:
    name: str
    kind: str  # "recipe" | "mixture"
    path: Path

    @property
    def summary(self) -> str:
        """The first sentence of the file's opening comment."""
        lines = []
        for line in self.path.read_text().splitlines():
            if not line.startswith("#"):
                break
            lines.append(line.lstrip("# ").strip())
        text = " ".join(x for x in lines if x)
        return text.split(". ")[0].split(": docsynth ")[0].rstrip(".")


def shipped_recipes() -> dict[str, ShippedRecipe]:
    """Every shipped recipe and mixture file, by name (a mixture's name is mixtures/NAME)."""
    root = shipped("recipes")
    found = [ShippedRecipe(p.stem, "recipe", p) for p in sorted(root.glob("*.yaml"))]
    found += [ShippedRecipe(f"mixtures/{p.stem}", "mixture", p) for p in sorted((root / "mixtures").glob("*.yaml"))]
    return {r.name: r for r in found}


def shipped_recipe(name: str) -> ShippedRecipe:
    recipes = shipped_recipes()
    key = name.removesuffix(".yaml")
    if key not in recipes:
        raise DocsynthError(f"no shipped recipe '{name}' (have: {', '.join(recipes)})")
    return recipes[key]
