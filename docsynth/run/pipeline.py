"""A whole recipe in one run directory: ingest -> generate -> filter and write.

    RUN/recipe.yaml, manifest.json, rejects.jsonl, pages/        ingest
    RUN/generate-*.json|jsonl, candidates/                        generate
    RUN/filter-rejects.jsonl, dataset/                            filter + write
    RUN/run.json                                                  what each stage did or reused

Ingest runs in its process pool beside generation: the engine starts while the first documents
are rendered, and generates for each ingest shard as soon as it is finished, so on a GPU the
LLM does not wait for rendering or OCR. Each stage keeps what an earlier run finished when its
own config and its inputs are unchanged (keyed per task), so changing only the filters redoes
only filtering and writing, and changing a prompt reuses the ingest. --force STAGE forgets a
stage's finished work first.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from docsynth.dataset.write import MARKER, WriteSummary, run_write
from docsynth.errors import DocsynthError
from docsynth.generate.stage import GenerateSummary
from docsynth.generate.stage import Progress as GenerateProgress
from docsynth.generate.stage import run_generate
from docsynth.ingest.stage import IngestSummary, run_ingest
from docsynth.ingest.stage import Progress as IngestProgress
from docsynth.recipe import Recipe
from docsynth.run.tasks import atomic_write_text

STAGES = ("ingest", "generate", "write")


@dataclass(slots=True)
class RunSummary:
    out_dir: str
    ingest: IngestSummary | None = None
    generate: GenerateSummary | None = None
    write: WriteSummary | None = None
    forced: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rejects(self) -> int:
        return (self.ingest.rejects if self.ingest else 0) + (self.generate.rejects if self.generate else 0)

    def to_dict(self) -> dict:
        return {"out_dir": self.out_dir, "forced": self.forced, "seconds": self.seconds,
                **{s: getattr(self, s).to_dict() for s in STAGES if getattr(self, s) is not None}}


def forget(out: Path, stage: str) -> None:
    """Make a stage's finished work untrusted, so the next run redoes it (outputs are replaced
    atomically as they are redone)."""
    if stage not in STAGES:
        raise DocsynthError(f"--force: no stage '{stage}' (stages: {', '.join(STAGES)})")
    if stage == "write":
        (out / "dataset" / MARKER).unlink(missing_ok=True)
        return
    folder = out / ("pages" if stage == "ingest" else "candidates")
    for marker in folder.glob("task-*.done.json"):
        marker.unlink()


def run_recipe(recipe: Recipe, base: Path, out: Path, force: list[str] = (),
               ingest_progress: IngestProgress | None = None, generate_progress: GenerateProgress | None = None,
               session=None, executor: str = "local", address: str | None = None,
               ray_progress: Callable[[int, int, int, int], None] | None = None) -> RunSummary:
    """Run every stage of the recipe into out, reusing what is still valid; executor "ray" runs
    ingest and generation on a Ray cluster (docsynth.run.ray_executor), the rest as here."""
    t0 = time.perf_counter()
    if not recipe.inputs.paths:
        raise DocsynthError("the recipe has no inputs.paths")
    if executor not in ("local", "ray"):
        raise DocsynthError(f"--executor: no executor '{executor}' (executors: local, ray)")
    for stage in force:
        forget(out, stage)
    s = RunSummary(out_dir=str(out), forced=list(force))
    if executor == "ray":
        from docsynth.run.ray_executor import run_on_ray
        (out / "pages").mkdir(parents=True, exist_ok=True)
        s.ingest, s.generate = run_on_ray(recipe, base, out, address, ray_progress)
        return _write(recipe, out, s, t0)
    done = threading.Event()
    result: dict = {}

    def ingest() -> None:
        try:
            result["summary"] = run_ingest(recipe, base, out, ingest_progress)
        except BaseException as e:  # handed to the main thread below
            result["error"] = e
        finally:
            done.set()

    (out / "pages").mkdir(parents=True, exist_ok=True)
    worker = threading.Thread(target=ingest, name="docsynth-ingest", daemon=True)
    worker.start()
    try:
        s.generate = run_generate(recipe, base, out, out, generate_progress, session=session,
                                  upstream_done=done.is_set)
    except BaseException:
        if done.is_set() and "error" in result:
            raise result["error"] from None  # the ingest failure is why generation had nothing
        raise
    worker.join()
    if "error" in result:
        raise result["error"]
    s.ingest = result["summary"]
    return _write(recipe, out, s, t0)


def _write(recipe: Recipe, out: Path, s: RunSummary, t0: float) -> RunSummary:
    s.write = run_write(recipe, out)
    s.seconds = round(time.perf_counter() - t0, 3)
    atomic_write_text(out / "run.json", json.dumps(s.to_dict(), indent=1, sort_keys=True) + "\n")
    return s
