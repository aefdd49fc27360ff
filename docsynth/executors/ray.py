"""`docsynth run --executor ray`: the same stages and the same run directory, with Ray Data
placing the work over a cluster.

    tasks (ingest's plan, on the driver)
      -> map(IngestRunner)                CPU tasks, ray.ingest_cpus each
      -> map_batches(GenerateRunner)      vLLM engines: ray.engine_replicas actors, each created
                                          once, ray.tasks_per_batch ingest shards per call
      -> the driver: each stage's finish, then write as in a local run

Only placement is here: what a task does, where its shard and marker go and what a stage's
summary says are the stages' own (docsynth.core.stage), exactly as the local executor runs them.
Ray Data streams the tasks through both steps, so engines generate while later documents are
still being rendered. What travels through the object store is small: a pickled task (document
references) and each task's marker (counts and rejects). The run directory must be on storage
every node sees (NFS, Lustre, a mounted bucket): that is what lets a restarted run skip every
finished task, on any executor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sys
import time

from docsynth.core.errors import MissingDependencyError
from docsynth.core.recipe import RayConfig
from docsynth.core.stage import Progress
from docsynth.generate.stage import GenerateStage
from docsynth.ingest.stage import IngestStage

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("--executor ray needs Ray: pip install 'docsynth[ray]'") from e
    return ray


def _run_or_reuse(stage, task) -> tuple[dict, bool]:
    """A task's marker: an earlier run's if it finished the task, else the task run and committed now."""
    info = stage.store.done(task)
    if info is not None:
        return info, True
    ((_, info),) = stage.run([task])
    stage.store.commit(task, info)
    return info, False


def ingest_one(row: dict, stage: bytes) -> dict:
    """Ray task: one ingest task (the stage travels pickled in the map's arguments)."""
    ingest: IngestStage = pickle.loads(stage)
    ingest.open()
    info, reused = _run_or_reuse(ingest, pickle.loads(row["task"]))
    return {"task": row["task"], "ingest": json.dumps(info), "ingest_reused": reused}


class GenerateRunner:
    """Ray actor: the generate stage with its engine, created once; each call takes the ingest
    shards of a batch of rows (their samples are generated together)."""

    def __init__(self, stage: bytes) -> None:
        self.stage: GenerateStage = pickle.loads(stage)
        self.stage.open()

    def __call__(self, batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        indices = [pickle.loads(r["task"]).index for r in rows]
        tasks = {i: self.stage.task_of(self.stage.upstream.info(i)) for i in indices}
        infos = {}
        for i, t in tasks.items():
            info = self.stage.store.done(t)
            if info is not None:
                infos[i] = (info, True)
        for task, info in self.stage.run([t for i, t in sorted(tasks.items()) if i not in infos]):
            self.stage.store.commit(task, info)
            infos[task.index] = (info, False)
        return {**{k: [r[k] for r in rows] for k in ("task", "ingest", "ingest_reused")},
                "generate": [json.dumps(infos[i][0]) for i in indices],
                "generate_reused": [infos[i][1] for i in indices]}


def run_on_ray(ingest: IngestStage, generate: GenerateStage, cfg: RayConfig, address: str | None = None,
               progress: Progress | None = None):
    """Ingest and generate every task on Ray (see the module docstring); returns both stages'
    summaries, as the local executor does."""
    ray = _ray()
    progress = progress or Progress()
    t0 = time.perf_counter()
    ingest.begin()
    generate.begin()
    tasks = ingest.plan()
    ingest.store.prune(tasks)
    started = _init(ray, address or cfg.address, cfg.local_cpus, cfg.object_store_memory)
    # Ray prints what it hears from the cluster (a worker's death, the autoscaler monitor's
    # traceback when it is stopped) to sys.stdout, from a thread; stdout is for the summary
    # (`run --json` once ended with a traceback after its JSON). So stderr takes it while this
    # session lasts, and a Ray started here is stopped here, not at exit after the summary.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            return _drive(ray, ingest, generate, cfg, tasks, progress, t0)
        finally:
            if started:
                ray.shutdown()


def _drive(ray, ingest: IngestStage, generate: GenerateStage, cfg: RayConfig, tasks: list, progress: Progress,
           t0: float):
    gpus = cfg.engine_gpus if cfg.engine_gpus is not None else (1.0 if ray.cluster_resources().get("GPU", 0) else 0.0)
    progress.planned(ingest.name, tasks)
    rows = [{"task": pickle.dumps(t)} for t in tasks]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    # Ingest tasks are retried when their worker dies (a PDF that crashes mupdf); the distinct
    # remote args also keep Ray Data from fusing ingest into the engine actors, so ingest gets
    # its own CPUs across the cluster.
    ds = ds.map(ingest_one, fn_kwargs={"stage": pickle.dumps(ingest)}, num_cpus=cfg.ingest_cpus,
                max_retries=cfg.ingest_retries)
    markers: dict[str, dict[int, dict]] = {"ingest": {}, "generate": {}}
    reused: dict[str, set[int]] = {"ingest": set(), "generate": set()}
    summary = None
    if ingest.recipe.ingest.dedup.enabled:
        # Near-duplicates are found over every ingest task (in input order) before any is
        # generated: ingest runs to the end, its finish finds them, then generate starts.
        rows = list(ds.iter_rows())
        for row in rows:
            _advance(progress, "ingest", pickle.loads(row["task"]), row, markers, reused)
        summary = ingest.finish(tasks, markers["ingest"], reused["ingest"], t0)
        generate.plan()  # reads what ingest left out
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    ds = ds.map_batches(GenerateRunner, fn_constructor_kwargs={"stage": pickle.dumps(generate)},
                        batch_size=cfg.tasks_per_batch, compute=ray.data.ActorPoolStrategy(size=cfg.engine_replicas),
                        num_gpus=gpus, num_cpus=cfg.engine_cpus, batch_format="default")
    gen_tasks = {}
    for row in ds.iter_rows():
        task = pickle.loads(row["task"])
        gen_task = generate.task_of(ingest.store.info(task.index))
        gen_tasks[task.index] = gen_task
        progress.planned(generate.name, [gen_task])
        if summary is None:
            _advance(progress, "ingest", task, row, markers, reused)
        _advance(progress, "generate", gen_task, row, markers, reused)
    summary = summary or ingest.finish(tasks, markers["ingest"], reused["ingest"], t0)
    gen = sorted(gen_tasks.values(), key=lambda t: t.index)
    generate.store.prune(gen)
    return summary, generate.finish(gen, markers["generate"], reused["generate"], t0)


def _advance(progress: Progress, name: str, task, row: dict, markers: dict, reused: dict) -> None:
    markers[name][task.index] = json.loads(row[name])
    if row[f"{name}_reused"]:
        reused[name].add(task.index)
    progress.advanced(name, task, markers[name][task.index], bool(row[f"{name}_reused"]))


def _init(ray, address: str | None, num_cpus: int | None, object_store_memory: int | None) -> bool:
    """Connect to or start Ray; False where this process was already connected (it stays so)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = {"address": address} if address else {"num_cpus": num_cpus, "object_store_memory": object_store_memory}
    # The workers see the settings the stages read from the environment (vLLM's, the Hub's, ours).
    env = {k: v for k, v in os.environ.items() if k.startswith(("VLLM_", "HF_", "DOCSYNTH_", "TRANSFORMERS_", "OMP_"))}
    kwargs["runtime_env"] = {"env_vars": env} if env else None
    # Ray's own progress bars and logs would interleave with ours; its errors still surface.
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level=logging.WARNING,
             **{k: v for k, v in kwargs.items() if v is not None})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.execution_options.preserve_order = False
    return True
