"""The Python API: what a notebook or a pipeline calls instead of the command line. Each entry
point is what a command runs (run_ingest: `docsynth ingest`, ...), and returns its summary
(`.to_dict()` is the command's --json). The command line stands on it too: docsynth.cli imports
this package (and the core's records), nothing below it (the import contract in pyproject.toml);
docsynth.api.show holds what only the command line shows.

    import docsynth

    run = docsynth.run("recipes/quickstart.yaml", "runs/quickstart")   # ingest -> generate -> write
    kept, grounded = run.write.samples_out, run.generate.grounded_share
    ds = docsynth.open_dataset("runs/quickstart/dataset")
    pairs = [sample.pairs for sample in ds.samples(n=3)]
    samples = ds.stats().samples
    docsynth.mix("recipes/mixtures/docs.yaml", "runs/mix")
    docsynth.push("runs/mix", "org/docs-mix", private=True)

A recipe is a path (its relative paths resolve against its folder) or a Recipe object (they
resolve against `base`, by default the current directory). Failures raise DocsynthError, and an
invalid recipe RecipeError, each with a message for people.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from docsynth import hub, preview
from docsynth.config.section import parse_config
from docsynth.config.decontam import DecontamConfig
from docsynth.config.mixture import Mixture, load_mixture
from docsynth.config.push import PushOptions
from docsynth.config.recipe import Recipe, parse_recipe
from docsynth.config.recipe import load_recipe as _load
from docsynth.core.stage import Progress
from docsynth.dataset import export as _export
from docsynth.dataset import stats as _stats
from docsynth.decontam.clean import decontaminate_dataset
from docsynth.executors import local
from docsynth.executors.pipeline import PIPELINE, names
from docsynth.executors.plan import RunPlan, plan_run
from docsynth.llm.backends.engineargs import check_recipe_engines
from docsynth.llm.models import cache_dir
from docsynth.mixing.mixer import run_mix

RecipeLike = str | Path | Recipe | dict


def load_recipe(recipe: RecipeLike) -> Recipe:
    """A validated recipe from a YAML file or a mapping (RecipeError names every bad key)."""
    return _recipe(recipe, None)[0]


def _recipe(recipe: RecipeLike, base: str | Path | None) -> tuple[Recipe, Path]:
    if isinstance(recipe, Recipe):
        return recipe, Path(base or Path.cwd())
    if isinstance(recipe, dict):
        return parse_recipe(recipe, "<dict>"), Path(base or Path.cwd())
    r, folder = _load(recipe)
    return r, Path(base) if base else folder


def run(recipe: RecipeLike, out: str | Path, *, base: str | Path | None = None, force: list[str] = (),
        executor: str = "local", address: str | None = None, progress: Progress | None = None) -> local.RunSummary:
    """`docsynth run`: every stage into the run directory `out`, reusing what is still valid."""
    r, b = _recipe(recipe, base)
    return local.run_recipe(r, b, Path(out), list(force), progress, executor=executor, address=address)


def run_ingest(recipe: RecipeLike, out: str | Path, *, base: str | Path | None = None, progress: Progress | None = None):
    """`docsynth ingest`: render and read every page of the recipe's inputs into `out`."""
    r, b = _recipe(recipe, base)
    return local.run_ingest(r, b, Path(out), progress)


def run_generate(recipe: RecipeLike, pages_dir: str | Path, out: str | Path | None = None, *,
             base: str | Path | None = None, progress: Progress | None = None):
    """`docsynth generate`: QA candidates for the pages ingested in `pages_dir`."""
    r, b = _recipe(recipe, base)
    return local.run_generate(r, b, Path(pages_dir), Path(out or pages_dir), progress)


def run_verify(recipe: RecipeLike, run_dir: str | Path, out: str | Path | None = None, *,
               base: str | Path | None = None, progress: Progress | None = None):
    """`docsynth verify`: verdicts for every candidate of `run_dir` (in `out`, default run_dir)."""
    r, b = _recipe(recipe, base)
    return local.run_verify(r, b, Path(run_dir), Path(out) if out else None, progress)


def run_write(recipe: RecipeLike, run_dir: str | Path, out: str | Path | None = None, *,
              base: str | Path | None = None):
    """`docsynth write`: filter the candidates of `run_dir` and write the Cauldron dataset."""
    r, b = _recipe(recipe, base)
    return local.run_write(r, Path(run_dir), Path(out) if out else None, b)


def plan(recipe: RecipeLike, *, base: str | Path | None = None) -> RunPlan:
    """`docsynth run --dry-run`: what the recipe would cost (documents, pages, samples, requests,
    prompt tokens); reads text layers only, writes nothing, starts no engine."""
    r, b = _recipe(recipe, base)
    return plan_run(r, b)


def check_engines(recipe: RecipeLike) -> None:
    """The recipe's vLLM engine sections (generate's, and verify's where it has its own) against
    the installed vLLM's options, before any work: a typo is a RecipeError naming it."""
    check_recipe_engines(_recipe(recipe, None)[0])


def stage_names() -> list[str]:
    """The stages `run` drives, in order (what `force` takes)."""
    return names(PIPELINE)


def decontaminate(dataset: str | Path, config: DecontamConfig | dict, out: str | Path | None = None, *,
                  hashes: str | Path | None = None, progress=None):
    """`docsynth decontaminate`: check a finished dataset against evaluation sets; with `out`, write
    the cleaned (or flagged) copy. `hashes`: where evaluation-set hashes are kept between runs."""
    cfg = config if isinstance(config, DecontamConfig) else parse_config(DecontamConfig, config, "decontaminate() arguments",
                                                                         "decontamination config")
    return decontaminate_dataset(Path(dataset), cfg, Path(out) if out else None,
                                 Path(hashes) if hashes else cache_dir() / "hashes", progress)


def export(dataset: str | Path, out: str | Path, fmt: str = "messages"):
    """`docsynth export`: a dataset, mixture or run directory in another trainer's view, rows no
    loader could read left out and named."""
    return _export.export(Path(dataset), Path(out), fmt)


def stats(path: str | Path, tokenizer: str | None = None) -> _stats.Stats:
    """`docsynth stats`: counts, per-source shares and distributions (tokens with a local tokenizer)."""
    return open_dataset(path).stats(tokenizer)


def mix(mixture: str | Path | Mixture, out: str | Path, *, spill_dir: str | Path | None = None,
        progress: Progress | None = None, **overrides: Any):
    """`docsynth mix`: the mixture file's sources into one shuffled, sharded mixture in `out`;
    overrides (seed=, total=) are validated like the file."""
    m = mixture if isinstance(mixture, Mixture) else load_mixture(mixture)[0]
    if overrides:
        m = parse_config(Mixture, {**m.model_dump(), **overrides}, "mix() arguments", "mixture")
    return run_mix(m, Path(out), progress, spill_dir=Path(spill_dir) if spill_dir else None)


def push(directory: str | Path, repo_id: str, options: PushOptions | None = None, *, dry_run: bool = False,
         progress: Callable[[int, int], None] | None = None, **fields: Any):
    """`docsynth push`: publish a dataset or mixture to the Hub; options, or its fields as keywords
    (private, revision, config, commit_files, commit_bytes); progress(bytes_sent, bytes_total)."""
    o = options or parse_config(PushOptions, fields, "push() arguments", "set of push options")
    return hub.push(Path(directory), repo_id, o, dry_run=dry_run, progress=progress)


@dataclass(slots=True, frozen=True)
class Dataset:
    """A dataset, mixture or run directory, as `docsynth preview` and `docsynth stats` read it."""

    path: Path

    def samples(self, n: int | None = None, *, start: int = 0, source: str | None = None,
                seed: int | None = None) -> Iterator[preview.Item]:
        """Samples (images, QA pairs, source) from `start`, in a seeded order with seed."""
        return islice(preview.samples(self.path, start, source, seed), n)

    def rejects(self, source: str | None = None) -> Iterator[preview.Item]:
        """A run directory's rejects, each with its stage's reason."""
        return preview.rejects(self.path, 0, source)

    def stats(self, tokenizer: str | None = None) -> _stats.Stats:
        """Counts, per-source shares and distributions (tokens with a local tokenizer)."""
        return _stats.dataset_stats(self.path, _stats.load_tokenizer(tokenizer) if tokenizer else None)


def open_dataset(path: str | Path) -> Dataset:
    return Dataset(Path(path))
