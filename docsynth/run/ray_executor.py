"""`docsynth run --executor ray`: the same recipe, the same stage functions and the same run
directory, with Ray Data scheduling the work over a cluster.

    tasks (planned on the driver, as locally)
      -> map(ingest one task)             CPU tasks, ray.ingest_cpus each
      -> map_batches(Engine)              vLLM engines: ray.engine_replicas actors, each created once,
                                          ray.tasks_per_batch ingest shards per call
      -> the driver: manifests, then filter and write as in a local run

Ray Data streams the tasks through both steps, so engines generate while later documents are
still being rendered. What travels through the object store is small: a pickled task
(document references) and each task's marker (counts and rejects). Pages and candidates go to
the run directory's shards, written by the stage functions exactly as the local executor writes
them (atomic shard, then marker), so the run directory must be on storage every node sees
(NFS, Lustre, a mounted bucket): that is what lets a restarted run skip every finished task, on
any executor.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

from docsynth.errors import DocsynthError, MissingDependencyError
from docsynth.recipe import Recipe

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError("--executor ray needs Ray: pip install 'docsynth[ray]'") from e
    return ray


def ingest_one(row: dict, recipe_json: str, out: str) -> dict:
    """Ray task: one ingest task, unless an earlier run finished it (its marker says so)."""
    from docsynth.ingest.stage import ingest_task, init_worker
    from docsynth.run.tasks import TaskStore

    init_worker()
    recipe = Recipe.model_validate_json(recipe_json)
    task = pickle.loads(row["task"])
    store = TaskStore(Path(out) / "pages")
    info = store.done(task)
    reused = info is not None
    if info is None:
        info = ingest_task(task, recipe.ingest, recipe.inputs.pdf_column, store)
        store.commit(task, info)
    return {"index": task.index, "ingest": json.dumps(info), "ingest_reused": reused}


class Engine:
    """Ray actor: one generation session (a vLLM engine, or a client of a server), created once."""

    def __init__(self, recipe_json: str, base: str, out: str) -> None:
        from docsynth.generate.prompts import recipe_templates
        from docsynth.generate.samples import Prompter
        from docsynth.generate.session import open_session
        from docsynth.generate.stage import key_config
        from docsynth.run.tasks import TaskStore

        self.recipe = Recipe.model_validate_json(recipe_json)
        cfg = self.recipe.generate
        self.out = Path(out)
        templates = recipe_templates(cfg, Path(base))
        self.key = key_config(self.recipe, templates)
        self.store = TaskStore(self.out / "candidates")
        self.session = open_session(cfg, Path(base))
        self.prompter = Prompter(cfg, templates, self.session.tokens, self.session.context)
        self.prompter.check()

    def __call__(self, batch: dict) -> dict:
        from docsynth.generate.stage import generate_wave, task_of_marker, waves

        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        tasks, infos = [], {}
        for r in rows:
            task = task_of_marker(self.out / "pages" / f"task-{int(r['index']):05d}.done.json", self.key)
            tasks.append(task)
            info = self.store.done(task)
            if info is not None:
                infos[task.index] = (info, True)
        todo = [t for t in tasks if t.index not in infos]
        for wave in waves(todo, self.recipe.generate, self.recipe.seed):
            for task, info in generate_wave(self.session, self.prompter, wave, self.recipe, self.store):
                infos[task.index] = (info, False)
        return {"index": [int(r["index"]) for r in rows], "ingest": [r["ingest"] for r in rows],
                "ingest_reused": [bool(r["ingest_reused"]) for r in rows],
                "generate": [json.dumps(infos[t.index][0]) for t in tasks],
                "generate_reused": [infos[t.index][1] for t in tasks]}


def run_on_ray(recipe: Recipe, base: Path, out: Path, address: str | None = None,
               progress: Callable[[int, int, int, int], None] | None = None):
    """Ingest and generate every task on Ray (see the module docstring); returns the ingest and
    generate summaries, as the local executor's stages do. progress(tasks done, tasks, pages, output tokens)."""
    ray = _ray()
    from docsynth.generate.prompts import recipe_templates
    from docsynth.generate.stage import finish as finish_generate
    from docsynth.generate.stage import key_config, task_of_marker
    from docsynth.ingest.ocr import check_tesseract
    from docsynth.ingest.stage import finish as finish_ingest
    from docsynth.ingest.stage import plan
    from docsynth.recipe import dump_recipe
    from docsynth.run.tasks import TaskStore, atomic_write_text

    t0 = time.perf_counter()
    cfg = recipe.ray
    tesseract = check_tesseract(recipe.ingest.ocr.languages) if recipe.ingest.ocr.mode != "never" else None
    templates = recipe_templates(recipe.generate, base)  # a missing template fails here, not on the cluster
    plan_rejects: list = []
    tasks = plan(recipe, base, plan_rejects)
    if not tasks and not plan_rejects:
        raise DocsynthError("the inputs hold no documents")
    pages, candidates = TaskStore(out / "pages"), TaskStore(out / "candidates")
    pages.prune(tasks)
    atomic_write_text(out / "recipe.yaml", dump_recipe(recipe))
    atomic_write_text(out / "generate-recipe.yaml", dump_recipe(recipe))
    _init(ray, address or cfg.address, cfg.local_cpus, cfg.object_store_memory)
    gpus = cfg.engine_gpus if cfg.engine_gpus is not None else (1.0 if ray.cluster_resources().get("GPU", 0) else 0.0)
    recipe_json = recipe.model_dump_json()
    rows = [{"task": pickle.dumps(t)} for t in tasks]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    # Ingest tasks are retried when their worker dies (a PDF that crashes mupdf); the distinct
    # remote args also keep Ray Data from fusing ingest into the engine actors, so ingest gets
    # its own CPUs across the cluster.
    ds = ds.map(ingest_one, fn_kwargs={"recipe_json": recipe_json, "out": str(out)}, num_cpus=cfg.ingest_cpus,
                max_retries=cfg.ingest_retries)
    ds = ds.map_batches(Engine, fn_constructor_kwargs={"recipe_json": recipe_json, "base": str(base), "out": str(out)},
                        batch_size=cfg.tasks_per_batch, compute=ray.data.ActorPoolStrategy(size=cfg.engine_replicas),
                        num_gpus=gpus, num_cpus=cfg.engine_cpus, batch_format="default")
    ingest_markers, generate_markers = {}, {}
    ingest_reused, generate_reused = set(), set()
    pages_seen = tokens = 0
    for row in ds.iter_rows():
        i = int(row["index"])
        ingest_markers[i] = json.loads(row["ingest"])
        generate_markers[i] = json.loads(row["generate"])
        if row["ingest_reused"]:
            ingest_reused.add(i)
        if row["generate_reused"]:
            generate_reused.add(i)
        pages_seen += ingest_markers[i]["pages"]
        tokens += 0 if row["generate_reused"] else generate_markers[i]["output_tokens"]
        if progress:
            progress(len(generate_markers), len(tasks), pages_seen, tokens)
    ingest = finish_ingest(recipe, out, tasks, pages, ingest_markers, plan_rejects, tesseract, len(ingest_reused), t0)
    ingest.pages_this_run = sum(m["pages"] for i, m in ingest_markers.items() if i not in ingest_reused)
    ingest.pages_per_s = round(ingest.pages_this_run / ingest.seconds, 2) if ingest.seconds else 0.0
    key = key_config(recipe, templates)
    gen_tasks = [task_of_marker(out / "pages" / f"task-{t.index:05d}.done.json", key) for t in tasks]
    candidates.prune(gen_tasks)
    generate = finish_generate(recipe, out, gen_tasks, candidates, generate_markers, recipe.generate.model, t0)
    generate.tasks_skipped = len(generate_reused)
    return ingest, generate


def _init(ray, address: str | None, num_cpus: int | None, object_store_memory: int | None) -> None:
    if ray.is_initialized():
        return
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
