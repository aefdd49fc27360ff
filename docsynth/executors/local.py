"""The local executor: every stage on this machine, one recipe in one run directory.

    RUN/recipe.yaml, manifest.json, rejects.jsonl, pages/        ingest
    RUN/generate-*.json|jsonl, candidates/                        generate
    RUN/verify-manifest.json, verdicts/                           verify (when verify.enabled)
    RUN/filter-rejects.jsonl, dataset/                            filter + write
    RUN/run.json                                                  what each stage did or reused

`drive` runs any stage (docsynth.core.stage): tasks an earlier run finished are kept, the rest
run in the stage's `workers` processes (a process pool that survives crashing workers) or in
this process, and each is committed as it finishes. In `run_recipe`, ingest runs in its pool
beside generation: the engine starts while the first documents are rendered and generates for
each ingest shard as soon as it is finished, so on a GPU the LLM does not wait for rendering or
OCR. Changing only the filters redoes only the writing; changing a prompt reuses the ingest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text
from docsynth.core.lock import locked
from docsynth.core.pool import prestart, run_tasks
from docsynth.core.recipe import Recipe
from docsynth.core.stage import Progress, Stage, run_one
from docsynth.dataset.write import WriteStage, WriteSummary
from docsynth.llm.session import Session
from docsynth.generate.stage import GenerateStage, GenerateSummary
from docsynth.ingest.stage import IngestStage, IngestSummary
from docsynth.verify.stage import VerifyStage, VerifySummary, shares_engine

STAGES = ("ingest", "generate", "verify", "write")
POLL_S = 0.2  # how often a stage that follows a running one looks for newly finished tasks
STOP_WAIT_S = 10.0  # for ingest's thread to stop its pool when generation fails


def drive(stage: Stage, progress: Progress | None = None, upstream_done: Callable[[], bool] | None = None,
          stop: threading.Event | None = None):
    """Run a stage's tasks here and return its summary. With upstream_done, the stage follows one
    running beside it: its plan is taken again and again, until upstream_done() says the
    upstream stage has finished and every task it made has been seen. With stop (a stage run on
    a thread), setting it stops the stage's worker processes and ends the drive."""
    t0 = time.perf_counter()
    progress = progress or Progress()
    if stage.workers > 0:
        prestart([type(stage).__module__])  # worker imports overlap the checks and planning below
    stage.begin()
    seen: dict[int, object] = {}
    markers: dict[int, dict] = {}
    reused: set[int] = set()

    def committed(task, info: dict) -> None:
        stage.store.commit(task, info)
        markers[task.index] = info
        progress.advanced(stage.name, task, info, False)

    try:
        while True:
            finished = upstream_done is None or upstream_done()  # read first: a task done before it is seen below
            plan = stage.plan()
            if upstream_done is None:
                stage.store.prune(plan)
            new = [t for t in plan if t.index not in seen or seen[t.index].key != t.key]
            progress.planned(stage.name, new)
            todo = []
            for t in new:
                seen[t.index] = t
                info = stage.store.done(t)
                if info is None:
                    markers.pop(t.index, None)
                    reused.discard(t.index)
                    todo.append(t)
                else:
                    markers[t.index] = info
                    reused.add(t.index)
                    progress.advanced(stage.name, t, info, True)
            if todo:
                _run(stage, todo, committed, progress, stop)
            elif finished:
                break
            else:
                time.sleep(POLL_S)
    except BaseException:  # interrupted (SIGTERM, Ctrl-C) or failed: the workers are stopped by now
        stage.store.tidy()  # what they left half-written; finished tasks stay
        raise
    tasks = sorted(seen.values(), key=lambda t: t.index)
    stage.store.prune(tasks)
    return stage.finish(tasks, markers, reused, t0)


def _run(stage: Stage, todo: list, committed: Callable[[object, dict], None], progress: Progress,
         stop: threading.Event | None = None) -> None:
    """The tasks in the stage's worker processes, or in this one (opened once, on first use)."""
    if stage.workers > 0:
        def on_crash(task) -> bool:
            info = stage.crashed(task)
            if info is not None:
                committed(task, info)
            return info is None

        run_tasks(run_one, todo, (stage,), min(stage.workers, len(todo)), committed, on_crash,
                  initializer=stage.open, preload=[type(stage).__module__], stop=stop)
        return
    if stage.opening:
        progress.status(stage.name, stage.opening)
    stage.open()
    for task, info in stage.run(todo):
        committed(task, info)


def run_ingest(recipe: Recipe, base: Path, out: Path, progress: Progress | None = None) -> IngestSummary:
    """Ingest the recipe's inputs into out; tasks an earlier run finished are kept."""
    with locked(out):
        return drive(IngestStage(recipe, base, out), progress)


def run_generate(recipe: Recipe, base: Path, pages_dir: Path, out: Path, progress: Progress | None = None,
                 session: Session | None = None, upstream_done: Callable[[], bool] | None = None) -> GenerateSummary:
    """QA candidates for every page ingested in pages_dir; tasks an earlier run finished are kept."""
    with locked(out):
        return drive(GenerateStage(recipe, base, pages_dir, out, session), progress, upstream_done)


def run_verify(recipe: Recipe, base: Path, run_dir: Path, out: Path | None = None,
               progress: Progress | None = None, session: Session | None = None) -> VerifySummary:
    """Verdicts for every candidate of run_dir (in out, default run_dir); finished tasks are kept."""
    with locked(out or run_dir):
        return drive(VerifyStage(recipe, base, run_dir, out, session), progress)


def run_write(recipe: Recipe, run_dir: Path, out: Path | None = None, base: Path | None = None) -> WriteSummary:
    """Filter the run's candidates and write the dataset; nothing is rewritten when unchanged.
    base: the recipe's folder (its evaluation set paths are relative to it; default the current one)."""
    stage = WriteStage(recipe, run_dir, out, base)
    with locked(run_dir, stage.out):  # it writes RUN/filter-rejects.jsonl too
        return drive(stage)


@dataclass(slots=True)
class RunSummary:
    out_dir: str
    ingest: IngestSummary | None = None
    generate: GenerateSummary | None = None
    verify: VerifySummary | None = None
    write: WriteSummary | None = None
    forced: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def produced(self) -> bool:
        """A dataset with rows, or the last stage that ran made something (a run stopped before write)."""
        last = self.write or self.verify or self.generate or self.ingest
        return last is None or last.produced

    @property
    def rejects(self) -> int:
        return (self.ingest.rejects if self.ingest else 0) + (self.generate.rejects if self.generate else 0)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "forced": self.forced, "seconds": self.seconds,
                **{s: getattr(self, s).to_dict() for s in STAGES if getattr(self, s) is not None}}


def stages(recipe: Recipe, base: Path, out: Path, session: Session | None = None) -> dict[str, Stage]:
    """The recipe's stages over one run directory, by name."""
    return {"ingest": IngestStage(recipe, base, out), "generate": GenerateStage(recipe, base, out, out, session),
            "verify": VerifyStage(recipe, base, out, out, session if shares_engine(recipe) else None),
            "write": WriteStage(recipe, out, base=base)}


def forget(stages_: dict[str, Stage], names: list[str]) -> None:
    """Make these stages' finished work untrusted, so the next run redoes it (outputs are replaced
    atomically as they are redone)."""
    for name in names:
        if name not in stages_:
            raise DocsynthError(f"--force: no stage '{name}' (stages: {', '.join(STAGES)})")
    for name in names:
        stages_[name].store.forget()


def run_recipe(recipe: Recipe, base: Path, out: Path, force: list[str] = (), progress: Progress | None = None,
               session: Session | None = None, executor: str = "local", address: str | None = None) -> RunSummary:
    """Run every stage of the recipe into out, reusing what is still valid; executor "ray" runs
    ingest and generation on a Ray cluster (docsynth.executors.ray), the rest as here."""
    t0 = time.perf_counter()
    if not recipe.inputs.paths:
        raise DocsynthError("the recipe has no inputs.paths")
    if executor not in ("local", "ray"):
        raise DocsynthError(f"--executor: no executor '{executor}' (executors: local, ray)")
    with locked(out):
        return _run_recipe(recipe, base, out, force, progress, session, executor, address, t0)


def _run_recipe(recipe, base, out, force, progress, session, executor, address, t0) -> RunSummary:
    st = stages(recipe, base, out, session)
    forget(st, list(force))
    s = RunSummary(out_dir=str(out), forced=list(force))
    if executor == "ray":
        from docsynth.executors.ray import run_on_ray
        s.ingest, s.generate = run_on_ray(st["ingest"], st["generate"], recipe.ray, address, progress)
    else:
        s.ingest, s.generate = _ingest_beside_generate(st["ingest"], st["generate"], progress)
    if recipe.verify.enabled:
        if not shares_engine(recipe):
            _stop_engines()  # the verifier's model needs the memory the generator's engine holds
        s.verify = drive(st["verify"], progress)
    s.write = drive(st["write"], progress)
    s.seconds = round(time.perf_counter() - t0, 3)
    atomic_write_text(out / "run.json", json.dumps(s.to_dict(), indent=1, sort_keys=True) + "\n")
    return s


def _ingest_beside_generate(ingest: IngestStage, generate: GenerateStage, progress: Progress | None):
    """Ingest in a thread (its tasks in its process pool) while generate follows its store here;
    with ingest.dedup, one after the other (near-duplicates are known once every task is done)."""
    if ingest.recipe.ingest.dedup.enabled:
        return drive(ingest, progress), drive(generate, progress)
    done, stop = threading.Event(), threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = drive(ingest, progress, stop=stop)
        except BaseException as e:  # handed to the main thread below
            result["error"] = e
        finally:
            done.set()

    ingest.store.prepare()  # generate's begin() looks for it before ingest's thread has made it
    worker = threading.Thread(target=run, name="docsynth-ingest", daemon=True)
    worker.start()
    try:
        gen = drive(generate, progress, upstream_done=done.is_set)
    except BaseException:
        if done.is_set() and "error" in result:
            raise result["error"] from None  # the ingest failure is why generation had nothing
        stop.set()  # Ctrl-C, SIGTERM, a dead engine: ingest's pool stops too, not later
        done.wait(STOP_WAIT_S)
        raise
    worker.join()
    if "error" in result:
        raise result["error"]
    return result["summary"], gen


def _stop_engines() -> None:
    from docsynth.llm.backends.vllm import shutdown_engines  # imports vLLM only where it ran

    shutdown_engines()
