"""The generate stage: ingested pages in, per-task parquet shards of QA candidates out.

    OUT/candidates/task-NNNNN.parquet + .done.json   one per ingest shard, same number
    OUT/generate-rejects.jsonl    samples without usable pairs (with the model's raw text)
    OUT/generate-manifest.json    config key, model, counts, tokens

Tasks are the ingest shards. Samples of several tasks go to the backend together (up to
generate.batch_samples), so the engine batches across documents; each task's shard is
written and committed as soon as its samples are done, with ingest's resume mechanism.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

import docsynth
from docsynth.errors import DocsynthError
from docsynth.generate.grounding import is_grounded
from docsynth.generate.prompts import recipe_templates
from docsynth.generate.outcomes import Outcome, generate_outcomes
from docsynth.generate.samples import Prompter, Sample, plan_samples
from docsynth.generate.session import Session, open_session
from docsynth.records import CANDIDATE_SCHEMA, Candidate, Reject, write_in_groups
from docsynth.config import config_hash
from docsynth.recipe import Recipe, dump_recipe
from docsynth.run.tasks import Task, TaskStore, atomic_write, atomic_write_text

log = logging.getLogger(__name__)
ROW_GROUP_SAMPLES = 32
POLL_S = 0.2  # how often to look for shards that a running ingest has finished


@dataclass(slots=True)
class GenerateSummary:
    """What a generate run did; also the JSON summary of the CLI."""

    out_dir: str
    model: str = ""
    tasks: int = 0
    tasks_skipped: int = 0
    samples: int = 0
    samples_ok: int = 0
    pages: int = 0  # pages in the samples asked about
    pairs: int = 0
    pairs_per_page: float = 0.0
    grounded_share: float = 0.0  # answers found in their page text (exactly or fuzzy >= 0.8)
    pairs_dropped: dict[str, int] = field(default_factory=dict)  # parsed but left out, by reason
    templates: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    rejects_file: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    output_tokens_per_s: float = 0.0  # this run's generation only
    seconds: float = 0.0
    shards: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Progress:
    """Hooks the caller may override to show progress."""

    def status(self, message: str) -> None: ...

    def planned(self, pages: int, pages_done: int) -> None: ...

    def grew(self, pages: int) -> None:
        """More pages to do: ingest finished another shard."""

    def advanced(self, pages: int, samples: int, output_tokens: int) -> None: ...


def key_config(recipe: Recipe, templates) -> str:
    g = recipe.generate.model_dump(mode="json")
    del g["openai"]  # where the server is, and how hard to retry, does not change the output
    prompts = {name: t.path.read_text() for name, t in templates.items()}
    return config_hash(g, prompts, recipe.seed, docsynth.__version__)


def plan(pages_dir: Path, key: str, cache: dict | None = None) -> list[Task]:
    """One task per finished ingest shard (so far), keyed by the shard's own key and the generate
    config's key. cache (marker name -> (mtime, task)) spares re-reading unchanged markers when
    called again and again beside a running ingest."""
    store = pages_dir / "pages"
    if not store.is_dir():
        raise DocsynthError(f"{pages_dir} is not an ingest output (no pages/ folder); run docsynth ingest first")
    cache = {} if cache is None else cache
    tasks = []
    for marker in sorted(store.glob("task-*.done.json")):
        try:
            mtime = marker.stat().st_mtime_ns
            if marker.name not in cache or cache[marker.name][0] != mtime:
                cache[marker.name] = (mtime, task_of_marker(marker, key))
        except (OSError, ValueError):  # replaced under us by a running ingest: seen on the next look
            continue
        tasks.append(cache[marker.name][1])
    return tasks


def task_of_marker(marker: Path, key: str) -> Task:
    """The generate task of one finished ingest shard (from its marker)."""
    info = json.loads(marker.read_text())
    shard = marker.with_name(marker.name.replace(".done.json", ".parquet"))
    index = int(marker.name.split(".")[0].split("-")[1])
    return Task(index, [str(shard), info["pages"]], config_hash({"pages": info["key"]}, key))


def generate_wave(session: Session, prompter: Prompter, wave: list, recipe: Recipe, store: TaskStore) -> list[tuple[Task, dict]]:
    """One batch of tasks (from waves()): their samples go to the backend together, then each
    task's candidates are written and committed. Returns (task, marker info) per task."""
    samples = [s for _, ss, _ in wave for s in ss]
    outcomes = generate_outcomes(session, prompter, samples, recipe)
    return [(task, _write_task(store, task, ss, outcomes, rejects, recipe)) for task, ss, rejects in wave]


def run_generate(recipe: Recipe, base: Path, pages_dir: Path, out: Path, progress: Progress | None = None,
                 session: Session | None = None, upstream_done: Callable[[], bool] | None = None) -> GenerateSummary:
    """Generate QA candidates for every ingested page; tasks finished by an earlier run are kept.

    With upstream_done, ingest is still running beside this: shards are taken as ingest finishes
    them (the engine starts and generates while later documents are rendered and OCRed), until
    upstream_done() says ingest has finished and every shard has been seen."""
    t0 = time.perf_counter()
    progress = progress or Progress()
    cfg = recipe.generate
    templates = recipe_templates(cfg, base)
    key = key_config(recipe, templates)  # once: the loop below looks for new shards many times
    store = TaskStore(out / "candidates")
    atomic_write_text(out / "generate-recipe.yaml", dump_recipe(recipe))
    progress.planned(0, 0)
    seen: dict[int, Task] = {}
    markers_read: dict = {}
    markers: dict[int, dict] = {}
    reused = 0
    gen_s, gen_tokens = 0.0, 0
    prompter = None
    while True:
        finished = upstream_done is None or upstream_done()  # read first: a shard done before it is seen below
        new = [t for t in plan(pages_dir, key, markers_read) if t.index not in seen or seen[t.index].key != t.key]
        todo = []
        for t in new:
            progress.grew(t.items[1] - (seen[t.index].items[1] if t.index in seen else 0))
            seen[t.index] = t
            info = store.done(t)
            if info is None:
                markers.pop(t.index, None)
                todo.append(t)
            else:
                markers[t.index] = info
                reused += 1
                progress.advanced(t.items[1], info["samples"], 0)
        if todo and prompter is None:
            progress.status(f"starting the {cfg.backend} backend for {cfg.model}")
            session = session or open_session(cfg, base)
            prompter = Prompter(cfg, templates, session.tokens, session.context)
            prompter.check()
        for wave in waves(todo, cfg, recipe.seed):
            g0 = time.perf_counter()
            done = generate_wave(session, prompter, wave, recipe, store)
            gen_s += time.perf_counter() - g0
            for task, info in done:
                markers[task.index] = info
                gen_tokens += info["output_tokens"]
                progress.advanced(task.items[1], info["samples"], info["output_tokens"])
        if finished and not todo:
            break
        if not todo:
            time.sleep(POLL_S)
    tasks = sorted(seen.values(), key=lambda t: t.index)
    if not tasks:
        raise DocsynthError(f"{pages_dir}/pages holds no finished ingest shards")
    store.prune(tasks)
    summary = finish(recipe, out, tasks, store, markers, cfg.model, t0)
    summary.tasks_skipped = reused
    summary.output_tokens_per_s = round(gen_tokens / gen_s, 1) if gen_s else 0.0
    return summary


def waves(todo: list[Task], cfg, seed: int):
    """Consecutive tasks with their planned samples, about batch_samples samples at a time."""
    wave, size = [], 0
    for task in todo:
        rejects: list[Reject] = []
        samples = plan_samples(Path(task.items[0]), cfg, seed, rejects)
        wave.append((task, samples, rejects))
        size += len(samples)
        if size >= cfg.batch_samples:
            yield wave
            wave, size = [], 0
    if wave:
        yield wave


def _write_task(store: TaskStore, task: Task, samples: list[Sample], outcomes: dict[str, Outcome],
                rejects: list[Reject], recipe: Recipe) -> dict:
    """Stream the task's page images from its ingest shard into candidate rows, then commit."""
    cfg = recipe.generate
    sampling = json.dumps(cfg.sampling.model_dump(mode="json"), sort_keys=True)
    wanted = {}
    for s in samples:
        for p in s.pages:
            wanted[(s.doc_id, p)] = s
    images: dict[str, list[bytes]] = {}
    stats = Counter()
    templates: Counter[str] = Counter()
    dropped: Counter[str] = Counter()

    def emit(s: Sample, imgs: list[bytes], fmt: str):
        o = outcomes[s.sample_id]
        stats["pages"] += len(s.pages)
        stats["prompt_tokens"] += sum(c.prompt_tokens for c in o.completions)
        stats["output_tokens"] += sum(c.output_tokens for c in o.completions)
        dropped.update(o.dropped)
        templates[s.template] += 1
        if not o.pairs:
            raw = "\n\n".join(c.text for c in o.completions if c.text) or None
            rejects.append(Reject("generate", s.source, s.doc_id, s.pages[0], o.reason or "no pairs", raw))
            return None
        cs = o.completions
        stats["ok"] += 1
        stats["pairs"] += len(o.pairs)
        stats["grounded"] += sum(is_grounded(p.answer, s.text) for p in o.pairs)
        return Candidate(s.sample_id, s.doc_id, s.source, s.pages, imgs, fmt, s.text, s.truncated,
                         [p.question for p in o.pairs], [p.answer for p in o.pairs], s.template, cfg.model,
                         cfg.backend, sampling, o.seeds, o.attempts, [c.finish_reason for c in cs],
                         sum(c.prompt_tokens for c in cs), sum(c.output_tokens for c in cs),
                         [c.text or "" for c in cs])

    def candidates():
        """Candidates in shard order, as each sample's last page image streams past."""
        cols = ["doc_id", "page", "image", "image_format"]
        for batch in pq.ParquetFile(task.items[0]).iter_batches(batch_size=32, columns=cols):
            for row in batch.to_pylist():
                s = wanted.get((row["doc_id"], row["page"]))
                if s is None:
                    continue
                imgs = images.setdefault(s.sample_id, [])
                imgs.append(row["image"])
                if len(imgs) == len(s.pages):
                    cand = emit(s, images.pop(s.sample_id), row["image_format"])
                    if cand is not None:
                        yield cand

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, CANDIDATE_SCHEMA, compression="zstd") as w:
            write_in_groups(w, candidates(), CANDIDATE_SCHEMA, ROW_GROUP_SAMPLES)

    atomic_write(store.shard(task), write)
    info = {"samples": len(samples), "samples_ok": stats["ok"], "pages": stats["pages"], "pairs": stats["pairs"],
            "grounded": stats["grounded"], "prompt_tokens": stats["prompt_tokens"],
            "output_tokens": stats["output_tokens"], "templates": dict(templates), "dropped": dict(dropped),
            "rejects": [r.to_dict() for r in rejects]}
    store.commit(task, info)
    return info


def finish(recipe, out, tasks, store, markers, model, t0) -> GenerateSummary:
    rejects = [r for t in tasks for r in markers[t.index]["rejects"]]
    atomic_write_text(out / "generate-rejects.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
    total = Counter()
    templates: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    for t in tasks:
        m = markers[t.index]
        dropped.update(m["dropped"])
        total.update({k: m[k] for k in ("samples", "samples_ok", "pages", "pairs", "grounded", "prompt_tokens",
                                         "output_tokens")})
        templates.update(m["templates"])
    s = GenerateSummary(
        out_dir=str(out), model=model, tasks=len(tasks), samples=total["samples"], samples_ok=total["samples_ok"],
        pages=total["pages"], pairs=total["pairs"], templates=dict(sorted(templates.items())),
        pairs_dropped=dict(sorted(dropped.items())),
        pairs_per_page=round(total["pairs"] / total["pages"], 2) if total["pages"] else 0.0,
        grounded_share=round(total["grounded"] / total["pairs"], 3) if total["pairs"] else 0.0,
        rejects=len(rejects), reject_reasons=dict(Counter(r["reason"].split(":")[0] for r in rejects)),
        rejects_file=str(out / "generate-rejects.jsonl"), prompt_tokens=total["prompt_tokens"],
        output_tokens=total["output_tokens"], shards=[str(p) for p in store.shards(tasks)])
    s.seconds = round(time.perf_counter() - t0, 3)
    manifest = {"stage": "generate", "model": model, "backend": recipe.generate.backend,
                "versions": {"docsynth": docsynth.__version__}, "tasks": len(tasks), "samples": s.samples,
                "samples_ok": s.samples_ok, "pairs": s.pairs, "rejects": s.rejects,
                "shards": [p.name for p in store.shards(tasks)]}
    atomic_write_text(out / "generate-manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return s
