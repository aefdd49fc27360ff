"""The local executor: every stage of the pipeline (docsynth.executors.pipeline) on this machine,
one recipe in one run directory.

    RUN/recipe.yaml, manifest.json, rejects.jsonl, pages/        ingest
    RUN/generate-*.json|jsonl, candidates/                        generate
    RUN/verify-manifest.json, verdicts/                           verify (when verify.enabled)
    RUN/filtered/, filter-rejects.jsonl, dataset/                 filter + write
    RUN/run.json                                                  what each stage did or reused

Each stage is driven by docsynth.executors.drive: tasks an earlier run finished are kept, the
rest run in the stage's `workers` processes or in this process, each committed as it finishes.
A stage run in worker processes runs beside the stage that follows it: ingest renders in its
pool while the engine starts and generates for each ingest shard as soon as it is finished, so
on a GPU the LLM does not wait for rendering or OCR. Changing only the filters redoes only the
writing; changing a prompt reuses the ingest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsynth.core.errors import DocsynthError
from docsynth.core.lock import locked
from docsynth.config.recipe import Recipe
from docsynth.core.rundir import RunDir
from docsynth.core.stage import Progress, Stage
from docsynth.core.summary import Summary
from docsynth.write.stage import WriteSummary
from docsynth.executors.drive import drive
from docsynth.executors.pipeline import (PIPELINE, Context, StageSpec, Step, build, generate_stage, ingest_stage,
                                         verify_stage, write_stage)
from docsynth.generate.stage import GenerateSummary
from docsynth.ingest.stage import IngestSummary
from docsynth.llm.session import Session
from docsynth.verify.stage import VerifySummary
STOP_WAIT_S = 10.0  # for ingest's thread to stop its pool when generation fails


def run_ingest(recipe: Recipe, base: Path, out: Path, progress: Progress | None = None) -> IngestSummary:
    """Ingest the recipe's inputs into out; tasks an earlier run finished are kept."""
    with locked(out):
        return drive(ingest_stage(recipe, base, out), progress)


def run_generate(recipe: Recipe, base: Path, pages_dir: Path, out: Path, progress: Progress | None = None,
                 session: Session | None = None, upstream_done: Callable[[], bool] | None = None) -> GenerateSummary:
    """QA candidates for every page ingested in pages_dir; tasks an earlier run finished are kept."""
    with locked(out):
        return drive(generate_stage(recipe, base, pages_dir, out, session), progress, upstream_done)


def run_verify(recipe: Recipe, base: Path, run_dir: Path, out: Path | None = None,
               progress: Progress | None = None, session: Session | None = None) -> VerifySummary:
    """Verdicts for every candidate of run_dir (in out, default run_dir); finished tasks are kept."""
    with locked(out or run_dir):
        return drive(verify_stage(recipe, base, run_dir, out, session), progress)


def run_write(recipe: Recipe, run_dir: Path, out: Path | None = None, base: Path | None = None) -> WriteSummary:
    """Filter the run's candidates and write the dataset; nothing is rewritten when unchanged.
    base: the recipe's folder (its evaluation set paths are relative to it; default the current one)."""
    stage = write_stage(recipe, run_dir, out, base)
    with locked(run_dir, stage.out):  # it writes RUN/filter-rejects.jsonl too
        return drive(stage)


@dataclass(slots=True)
class RunSummary(Summary):
    out_dir: str
    stages: dict[str, Any] = field(default_factory=dict)  # each stage's summary, by name, in run order
    forced: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # The built-in stages by name (what the CLI prints); another stage's summary is in `stages`.
    ingest = property(lambda self: self.stages.get("ingest"))
    generate = property(lambda self: self.stages.get("generate"))
    verify = property(lambda self: self.stages.get("verify"))
    write = property(lambda self: self.stages.get("write"))

    @property
    def produced(self) -> bool:
        """A dataset with rows, or the last stage that ran made something (a run stopped before write)."""
        return not self.stages or list(self.stages.values())[-1].produced

    @property
    def rejects(self) -> int:
        return (self.ingest.rejects if self.ingest else 0) + (self.generate.rejects if self.generate else 0)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "forced": self.forced, "seconds": self.seconds,
                **{name: summary.to_dict() for name, summary in self.stages.items()}}


def forget(steps: list[Step], force: list[str]) -> None:
    """Make these stages' finished work untrusted, so the next run redoes it (outputs are replaced
    atomically as they are redone)."""
    by_name = {s.spec.name: s for s in steps}
    for name in force:
        if name not in by_name:
            raise DocsynthError(f"--force: no stage '{name}' (stages: {', '.join(by_name)})")
    for name in force:
        by_name[name].stage.store.forget()


def run_recipe(recipe: Recipe, base: Path, out: Path, force: list[str] = (), progress: Progress | None = None,
               session: Session | None = None, executor: str = "local", address: str | None = None,
               pipeline: tuple[StageSpec, ...] = PIPELINE) -> RunSummary:
    """Run every stage of the pipeline into out, reusing what is still valid; executor "ray" places
    the stages' tasks on a Ray cluster (docsynth.executors.ray)."""
    t0 = time.perf_counter()
    if not recipe.inputs.paths:
        raise DocsynthError("the recipe has no inputs.paths")
    if executor not in ("local", "ray"):
        raise DocsynthError(f"--executor: no executor '{executor}' (executors: local, ray)")
    with locked(out):
        steps = build(pipeline, Context(recipe, base, out, session))
        forget(steps, list(force))
        s = RunSummary(out_dir=str(out), forced=list(force))
        on = [step for step in steps if step.on]
        if executor == "ray":
            from docsynth.executors.ray import run_on_ray
            s.stages = run_on_ray(on, recipe.ray, address, progress)
        else:
            s.stages = run_steps(on, progress)
        s.seconds = round(time.perf_counter() - t0, 3)
        RunDir(out).write_summary(s.to_dict())
        return s


def run_steps(steps: list[Step], progress: Progress | None = None) -> dict[str, Any]:
    """Every step here, in order. A stage run in worker processes runs on a thread beside the
    stage that follows it; an engine stage that does not share the engine before it stops that
    engine first (two engines on one CPU machine do not fit beside each other)."""
    summaries: dict[str, Any] = {}
    engine_open = False
    i = 0
    while i < len(steps):
        step = steps[i]
        if step.spec.place == "engine":
            if engine_open and not step.shares:
                _stop_engines()
            engine_open = True
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if step.stage.workers > 0 and nxt is not None and nxt.follows:
            if nxt.spec.place == "engine":
                engine_open = True
            summaries[step.spec.name], summaries[nxt.spec.name] = _beside(step.stage, nxt.stage, progress)
            i += 2
        else:
            summaries[step.spec.name] = drive(step.stage, progress)
            i += 1
    return summaries


def _beside(first: Stage, second: Stage, progress: Progress | None):
    """The first stage in a thread (its tasks in its process pool) while the second follows its
    store here."""
    done, stop = threading.Event(), threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = drive(first, progress, stop=stop)
        except BaseException as e:  # handed to the main thread below
            result["error"] = e
        finally:
            done.set()

    first.store.prepare()  # the second's begin() looks for it before the first's thread has made it
    worker = threading.Thread(target=run, name=f"docsynth-{first.name}", daemon=True)
    worker.start()
    try:
        second_summary = drive(second, progress, upstream_done=done.is_set)
    except BaseException:
        if done.is_set() and "error" in result:
            raise result["error"] from None  # the first stage's failure is why the second had nothing
        stop.set()  # Ctrl-C, SIGTERM, a dead engine: the first stage's pool stops too, not later
        done.wait(STOP_WAIT_S)
        raise
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["summary"], second_summary


def _stop_engines() -> None:
    from docsynth.llm.backends.vllm import shutdown_engines  # imports vLLM only where it ran

    shutdown_engines()
