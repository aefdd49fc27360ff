"""docsynth: synthetic vision-language training data from document collections.

The Python API (docsynth.api) is importable from here: load_recipe, run, run_ingest,
run_generate, run_verify, run_write, plan, decontaminate, export, stats, mix, push, open_dataset; with Recipe, Mixture, DocsynthError and the
training loader, MixtureDataset. They are imported on first use, so `import docsynth` stays cheap.
(Names of subpackages, such as docsynth.ingest, are not API names: an import would shadow them.)
"""

from docsynth.core.version import __version__ as __version__  # re-exported

_API = {"load_recipe", "run", "run_ingest", "run_generate", "run_verify", "run_write", "plan", "decontaminate", "export",
        "stats", "mix", "push", "open_dataset", "Dataset"}
_ELSEWHERE = {"Recipe": "docsynth.config.recipe", "Mixture": "docsynth.config.mixture", "DocsynthError": "docsynth.core.errors",
              "RecipeError": "docsynth.core.errors", "MixtureDataset": "docsynth.loader"}
__all__ = sorted(_API | set(_ELSEWHERE) | {"__version__"})


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module("docsynth.api"), name)
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module 'docsynth' has no attribute '{name}'")
