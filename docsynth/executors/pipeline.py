"""The pipeline: the stages `docsynth run` drives, in order, how each is made and where it runs.

Both executors iterate the same list (docsynth.executors.local, docsynth.executors.ray); neither
names a stage. A stage is a package that implements docsynth.core.stage's contract, plus one
line in PIPELINE. A caller (a test, a plugin) may hand the executors a pipeline of its own.

    place "cpu"     its tasks are CPU work: worker processes here, Ray tasks on a cluster
    place "engine"  its tasks need an LLM engine: this process here, engine actors on a cluster;
                    with `shares`, it runs on the engine of the engine stage before it (one
                    engine, one actor), else that engine is stopped before it starts
    place "driver"  its tasks run in the driver's process on either executor

A stage whose `follows` is true takes its tasks from the stage before it one by one (its
`task_of(upstream.info(index))`), so it can start while that stage is still running: locally
beside a stage run in worker processes, on Ray in the same stream of tasks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from docsynth.config.recipe import Recipe, dump_recipe
from docsynth.core.stage import Stage
from docsynth.write.stage import WriteStage
from docsynth.generate.stage import GenerateStage
from docsynth.ingest.stage import IngestStage
from docsynth.llm.session import Session
from docsynth.verify.stage import VerifyStage, shares_engine


@dataclass(frozen=True, slots=True)
class Context:
    """What every stage of one run is made from: the recipe, the folder its relative paths are
    read from, the run directory, and a session a caller opened (tests; None: each opens its own)."""

    recipe: Recipe
    base: Path
    out: Path
    session: Session | None = None


# Each stage is made from the sections of the recipe it reads, picked here and nowhere else; the
# stages, and what they call, never see the whole Recipe. Ingest and generate also keep the
# recipe as YAML beside their output (what made it). Write's card says how the whole dataset was
# made (pages, model, filters, licence), so write reads the whole recipe.

def ingest_stage(recipe: Recipe, base: Path, out: Path) -> IngestStage:
    return IngestStage(recipe.inputs, recipe.ingest, base, out, dump_recipe(recipe))


def generate_stage(recipe: Recipe, base: Path, pages_dir: Path, out: Path, session: Session | None = None
                   ) -> GenerateStage:
    return GenerateStage(recipe.generate, recipe.seed, base, pages_dir, out, session,
                         follows=not recipe.ingest.dedup.enabled, resolved=dump_recipe(recipe))


def verify_stage(recipe: Recipe, base: Path, run_dir: Path, out: Path | None = None,
                 session: Session | None = None) -> VerifyStage:
    return VerifyStage(recipe.verify, recipe.generate, recipe.seed, base, run_dir, out, session)


def write_stage(recipe: Recipe, run_dir: Path, out: Path | None = None, base: Path | None = None) -> WriteStage:
    return WriteStage(recipe, run_dir, out, base)


def _shares(recipe: Recipe) -> bool:
    return shares_engine(recipe.verify, recipe.generate)


def _always(recipe: Recipe) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class StageSpec:
    name: str
    make: Callable[[Context], Stage]
    place: Literal["cpu", "engine", "driver"]
    enabled: Callable[[Recipe], bool] = _always
    shares: Callable[[Recipe], bool] | None = None  # "engine": runs on the previous engine stage's engine


PIPELINE: tuple[StageSpec, ...] = (
    StageSpec("ingest", lambda c: ingest_stage(c.recipe, c.base, c.out), "cpu"),
    StageSpec("generate", lambda c: generate_stage(c.recipe, c.base, c.out, c.out, c.session), "engine"),
    StageSpec("verify", lambda c: verify_stage(c.recipe, c.base, c.out, c.out, c.session if _shares(c.recipe) else None),
              "engine", enabled=lambda r: r.verify.enabled, shares=_shares),
    StageSpec("write", lambda c: write_stage(c.recipe, c.out, base=c.base), "cpu"),
)


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of a run: its spec and the stage made for this run."""

    spec: StageSpec
    stage: Stage
    on: bool  # the recipe runs it (verify.enabled); --force may still name a stage that is off
    shares: bool = False  # an engine stage that runs on the engine of the engine stage before it

    @property
    def follows(self) -> bool:
        return bool(getattr(self.stage, "follows", False))


def build(pipeline: tuple[StageSpec, ...], ctx: Context) -> list[Step]:
    """The stages of a run, every one made (each checks its config and model here, before any
    work), those the recipe leaves off too (`on` false)."""
    return [Step(s, s.make(ctx), s.enabled(ctx.recipe), bool(s.shares and s.shares(ctx.recipe))) for s in pipeline]


def names(pipeline: tuple[StageSpec, ...]) -> list[str]:
    return [s.name for s in pipeline]
