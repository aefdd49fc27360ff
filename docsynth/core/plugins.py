"""Plugins: filters, LLM backends and prompt-template folders from other installed packages,
found through entry points (the way distilabel, datatrove and `llm` take a user's steps and
models from the user's own package). A package declares them in its pyproject.toml:

    [project.entry-points."docsynth.filters"]
    no_digits = "mypkg.filters:NoDigits"          # a filter class (see below)
    [project.entry-points."docsynth.backends"]
    echo = "mypkg.backend:EchoBackend"            # a backend class
    [project.entry-points."docsynth.prompts"]
    legal = "mypkg.prompts"                       # a package (its folder) or a str/Path of a folder of *.md

and a recipe names them like docsynth's own: `filters: [{name: no_digits, max_digits: 3}]`,
`generate.backend: echo`, `generate.prompts_dir: plugin:legal`.

- A filter class has `Config`, a pydantic model of its recipe keys other than `name`, is built
  as `cls(config)`, and is called as `filter(pair, kept) -> True | (False, "NAME: why")` with
  docsynth.write.filters.Pair (the question, the answer, the sample's text, the verify stage's
  verdicts and ratings) and the pairs of the same sample kept so far.
- A backend class is built as `cls(generate_section)` and has `complete(requests, sampling)` and
  `close()` (docsynth.llm.backends.Backend); optionally `context_length()`.
- tests/plugin_example is a complete package with one of each; docs/plugins.md says more.

A plugin that does not load is an error naming the package and the entry point, before any work.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from docsynth.core.errors import DocsynthError

GROUPS = {"filters": "docsynth.filters", "backends": "docsynth.backends", "prompts": "docsynth.prompts"}
PLUGIN = "plugin:"  # a prompts_dir of a plugin's templates: plugin:NAME


class PluginError(DocsynthError):
    """A plugin is missing, or fails to load."""


@cache
def installed(kind: str) -> dict[str, EntryPoint]:
    """The entry points of one kind (filters, backends, prompts), by name."""
    return {ep.name: ep for ep in entry_points(group=GROUPS[kind])}


@cache
def load(kind: str, name: str) -> Any:
    """The object a plugin's entry point names; PluginError naming it if it is not there or fails."""
    ep = installed(kind).get(name)
    if ep is None:
        raise PluginError(unknown(kind, name, []))
    try:
        return ep.load()
    except Exception as e:  # a third party's import error, of any kind
        pkg = f" (package {ep.dist.name} {ep.dist.version})" if ep.dist else ""
        raise PluginError(f"the {kind[:-1]} plugin '{name}' = {ep.value}{pkg} does not load: "
                          f"{type(e).__name__}: {e}") from None


def unknown(kind: str, name: str, builtins: list[str]) -> str:
    """The message for a name that is neither docsynth's own nor a plugin's, with a guess."""
    plugins = sorted(installed(kind))
    near = difflib.get_close_matches(name, builtins + plugins, n=1, cutoff=0.6)
    return (f"no {kind[:-1]} '{name}'" + (f"; did you mean '{near[0]}'?" if near else "") +
            f" (docsynth's: {', '.join(builtins) or 'none'}; plugins installed: {', '.join(plugins) or 'none'}, "
            f"from the '{GROUPS[kind]}' entry points)")


BUILTIN_BACKENDS = ["vllm", "openai"]


def backend_name(name: str) -> str:
    """A recipe's backend: docsynth's own, or an installed plugin's (ValueError with a guess if neither)."""
    if name not in BUILTIN_BACKENDS and name not in installed("backends"):
        raise ValueError(unknown("backends", name, BUILTIN_BACKENDS))
    return name


def prompt_folder(name: str) -> Path:
    """The folder of templates a `plugin:NAME` prompts_dir names."""
    obj = load("prompts", name)
    if isinstance(obj, ModuleType):
        folder = Path(obj.__file__ or "").parent
    elif isinstance(obj, (str, Path)):
        folder = Path(obj)
    else:
        raise PluginError(f"the prompts plugin '{name}' names a {type(obj).__name__}, not a package or a folder")
    if not folder.is_dir() or not any(folder.glob("*.md")):
        raise PluginError(f"the prompts plugin '{name}': {folder} holds no templates (*.md)")
    return folder
