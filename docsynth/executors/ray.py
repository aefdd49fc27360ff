"""`docsynth run --executor ray`: the same pipeline (docsynth.executors.pipeline) and the same run
directory, with Ray Data placing the work over a cluster.

The pipeline is cut into streams: a stage that `follows` the one before it joins its stream,
so its tasks start as that stage finishes each. In a stream,

    tasks (the first stage's plan, on the driver)
      -> map(a "cpu" stage)               Ray tasks, ray.ingest_cpus each, retried when their
                                          worker dies (a PDF that crashes mupdf)
      -> map_batches("engine" stages)     engine actors: ray.engine_replicas of them, each
                                          created once, ray.tasks_per_batch tasks per call;
                                          consecutive engine stages that share an engine
                                          (verify on the generator's model) run in one actor
      -> the driver: each stage's finish

An engine stage on another model starts a new stream once the one before has ended, so two
engines never hold one GPU. A "driver" stage runs on the driver, as in a local run (write is a
"cpu" stage: its tasks filter candidate shards on the cluster, its finish assembles the dataset).

Only placement is here: what a task does, where its shard and marker go and what a stage's
summary says are the stages' own (docsynth.core.stage), exactly as the local executor runs them.
What travels through the object store is small: a pickled task (document references) and each
task's marker (counts and rejects). The run directory must be on storage every node sees (NFS,
Lustre, a mounted bucket): that is what lets a restarted run skip every finished task, on any
executor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sys
import time
from typing import Any

from docsynth.core.errors import MissingDependencyError
from docsynth.config.recipe import RayConfig
from docsynth.core.stage import Progress, StoredMarkers
from docsynth.executors.drive import drive
from docsynth.executors.pipeline import Step

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("--executor ray needs Ray: pip install 'docsynth[ray]'") from e
    return ray


def _task(stage, row: dict, first: bool):
    """The stage's task for a row: the row's own (the stream's first stage), else the one it makes
    from the task of the same index that the stage before it finished."""
    return pickle.loads(row["task"]) if first else stage.task_of(stage.upstream.info(row["index"]))


def _record(row: dict, name: str, info: dict, reused: bool) -> None:
    row[name] = json.dumps(info)
    row[f"{name}_reused"] = reused


def cpu_one(row: dict, stage: bytes, first: bool) -> dict:
    """Ray task: one task of a "cpu" stage (the stage travels pickled in the map's arguments)."""
    st = pickle.loads(stage)
    st.open()
    task = _task(st, row, first)
    info = st.store.done(task)
    reused = info is not None
    if info is None:
        ((_, info),) = st.run([task])
        st.store.commit(task, info)
    _record(row, st.name, info, reused)
    return row


class EngineRunner:
    """Ray actor: one or more engine stages that share an engine, opened once; each call runs a
    batch of rows through each stage in turn (a stage's samples for the batch go to the engine
    together)."""

    def __init__(self, stages: bytes, first: bool) -> None:
        self.stages = pickle.loads(stages)
        self.first = first
        for st in self.stages:
            st.open()  # a second stage on the same model gets the engine this process started

    def __call__(self, batch: dict) -> dict:
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        for k, st in enumerate(self.stages):
            tasks = {r["index"]: _task(st, r, self.first and k == 0) for r in rows}
            infos = {}
            for i, t in tasks.items():
                info = st.store.done(t)
                if info is not None:
                    infos[i] = (info, True)
            for task, info in st.run([t for i, t in sorted(tasks.items()) if i not in infos]):
                st.store.commit(task, info)
                infos[task.index] = (info, False)
            for r in rows:
                _record(r, st.name, *infos[r["index"]])
        return {k: [r[k] for r in rows] for k in rows[0]}


def streams(steps: list[Step]) -> list[list[Step]]:
    """The steps cut where a stage cannot start before the one before it has ended."""
    out: list[list[Step]] = []
    for step in steps:
        if out and step.follows and "driver" not in (step.spec.place, out[-1][-1].spec.place) and _joins(out[-1], step):
            out[-1].append(step)
        else:
            out.append([step])
    return out


def _joins(stream: list[Step], step: Step) -> bool:
    """An engine stage joins a stream that has no engine yet, or whose last stage is an engine
    stage it shares."""
    if step.spec.place != "engine" or not any(s.spec.place == "engine" for s in stream):
        return True
    last = stream[-1]
    return last.spec.place == "engine" and step.shares


def run_on_ray(steps: list[Step], cfg: RayConfig, address: str | None = None,
               progress: Progress | None = None) -> dict[str, Any]:
    """Every step's tasks on Ray (see the module docstring); returns each stage's summary by name,
    as the local executor does."""
    ray = _ray()
    progress = progress or Progress()
    started = _init(ray, address or cfg.address, cfg.local_cpus, cfg.object_store_memory)
    # Ray prints what it hears from the cluster (a worker's death, the autoscaler monitor's
    # traceback when it is stopped) to sys.stdout, from a thread; stdout is for the summary
    # (`run --json` once ended with a traceback after its JSON). So stderr takes it while this
    # session lasts, and a Ray started here is stopped here, not at exit after the summary.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            summaries: dict[str, Any] = {}
            for stream in streams(steps):
                if stream[0].spec.place == "driver":
                    summaries[stream[0].spec.name] = drive(stream[0].stage, progress)
                else:
                    summaries.update(_stream(ray, stream, cfg, progress))
            return summaries
        finally:
            if started:
                ray.shutdown()


def _stream(ray, stream: list[Step], cfg: RayConfig, progress: Progress) -> dict[str, Any]:
    """One stream through Ray Data; each stage's finish on the driver once every row is back."""
    t0 = time.perf_counter()
    for step in stream:
        step.stage.begin()
    head = stream[0].stage
    tasks = head.plan()
    head.store.prune(tasks)
    progress.planned(head.name, tasks)
    gpus = cfg.engine_gpus if cfg.engine_gpus is not None else (1.0 if ray.cluster_resources().get("GPU", 0) else 0.0)
    rows = [{"index": t.index, "task": pickle.dumps(t)} for t in tasks]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    for k, group in enumerate(_groups(stream)):
        first = k == 0
        if group[0].spec.place == "cpu":
            # The distinct remote args also keep Ray Data from fusing a CPU stage into the engine
            # actors, so it gets its own CPUs across the cluster.
            ds = ds.map(cpu_one, fn_kwargs={"stage": pickle.dumps(group[0].stage), "first": first},
                        num_cpus=cfg.ingest_cpus, max_retries=cfg.ingest_retries)
        else:
            ds = ds.map_batches(EngineRunner, fn_constructor_kwargs={"stages": pickle.dumps([s.stage for s in group]),
                                                                     "first": first},
                                batch_size=cfg.tasks_per_batch, compute=ray.data.ActorPoolStrategy(size=cfg.engine_replicas),
                                num_gpus=gpus, num_cpus=cfg.engine_cpus, batch_format="default")
    seen: dict[str, dict[int, Any]] = {s.spec.name: {} for s in stream}
    finished: dict[str, set[int]] = {s.spec.name: set() for s in stream}  # markers stay on disk
    reused: dict[str, set[int]] = {s.spec.name: set() for s in stream}
    for row in ds.iter_rows():
        for k, step in enumerate(stream):
            st, name = step.stage, step.spec.name
            task = pickle.loads(row["task"]) if k == 0 else st.task_of(st.upstream.info(row["index"]))
            if k:
                progress.planned(name, [task])
            seen[name][task.index] = task
            finished[name].add(task.index)
            if row[f"{name}_reused"]:
                reused[name].add(task.index)
            progress.advanced(name, task, json.loads(row[name]), bool(row[f"{name}_reused"]))
    out = {}
    for k, step in enumerate(stream):
        done = sorted(seen[step.spec.name].values(), key=lambda t: t.index) if k else tasks
        if k:
            step.stage.store.prune(done)
        out[step.spec.name] = step.stage.finish(done, StoredMarkers(step.stage.store, finished[step.spec.name]),
                                                reused[step.spec.name], t0)
    return out


def _groups(stream: list[Step]) -> list[list[Step]]:
    """The stream's operators: each "cpu" stage alone, consecutive engine stages together."""
    out: list[list[Step]] = []
    for step in stream:
        if out and step.spec.place == "engine" and out[-1][-1].spec.place == "engine":
            out[-1].append(step)
        else:
            out.append([step])
    return out


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
