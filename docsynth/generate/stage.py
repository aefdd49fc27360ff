"""The generate stage: ingested pages in, per-task parquet shards of QA candidates out.

    OUT/candidates/               one shard and marker per ingest shard, same index
    OUT/generate-rejects.jsonl    samples without usable pairs (with the model's raw text)
    OUT/generate-manifest.json    config key, model, counts, tokens

Tasks are the ingest shards. Samples of several tasks go to the backend together (up to
generate.batch_samples), so the engine batches across documents; each task's shard is
written as soon as its samples are done (docsynth.core.stage has the contract).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.summary import StageSummary
from docsynth.core.version import __version__
from docsynth.core.errors import DocsynthError
from docsynth.core.readahead import prefetch
from docsynth.core.text import is_grounded
from docsynth.generate.answerfirst import question_template
from docsynth.llm.prompts import recipe_templates
from docsynth.generate.outcomes import Outcome, generate_outcomes
from docsynth.generate.samples import Prompter, Sample, plan_samples
from docsynth.llm.session import Session, check_vision, open_session
from docsynth.core.records import CANDIDATE_SCHEMA, Candidate, Reject, write_in_groups, write_rejects
from docsynth.config.section import config_hash
from docsynth.config.recipe import GenerateConfig, GroundedFilter
from docsynth.core.files import atomic_write, atomic_write_text
from docsynth.core.tasks import Finished, Task, TaskStore
from docsynth.core.rundir import RunDir
from docsynth.core.duplicates import read_duplicates

log = logging.getLogger(__name__)
ROW_GROUP_SAMPLES = 32
GROUNDED_AT = GroundedFilter().min_score  # the grounded filter's default: the summary's grounded_share

# What task_of reads of an upstream marker: the plan's cache of them lasts the whole run.
UPSTREAM_KEYS = ("key", "pages", "sha256")


@dataclass(slots=True)
class GenerateSummary(StageSummary):
    """What a generate run did; also the JSON summary of the CLI."""

    model: str = ""
    samples: int = 0
    samples_ok: int = 0
    pages: int = 0  # pages in the samples asked about
    pages_gated: dict[str, int] = field(default_factory=dict)  # pages left out by the gate, by reason (generate.gate)
    pairs: int = 0
    pairs_per_page: float = 0.0
    grounded_share: float = 0.0  # answers found in their page text (exactly, or fuzzy >= GROUNDED_AT)
    pairs_dropped: dict[str, int] = field(default_factory=dict)  # parsed but left out, by reason
    templates: dict[str, int] = field(default_factory=dict)
    rejects: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    rejects_file: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0
    output_tokens_per_s: float = 0.0  # this run's generation only
    shards: int = 0  # in out_dir/candidates (their names: the manifest)

    @property
    def produced(self) -> bool:
        return self.pairs > 0


@dataclass(slots=True)
class GenerateTask(Task):
    """One finished ingest shard: its samples are generated together, into a shard of the same index."""

    shard: str = ""  # the ingest shard
    pages: int = 0  # pages in it
    skip: dict | None = None  # its near-duplicates, left out (docsynth.ingest.dedup)


def key_config(cfg: GenerateConfig, seed: int, templates) -> str:
    g = cfg.model_dump(mode="json")
    del g["openai"], g["cpu"]  # where the server is, retries, memory and cores do not change the output
    prompts = {name: t.path.read_text() for name, t in templates.items()}
    if cfg.strategy == "answer_first":
        prompts["answer_first/question"] = question_template().path.read_text()
    return config_hash(g, prompts, seed, __version__)


class GenerateStage:
    """QA candidates for every ingested page (see docsynth.core.stage). Its plan follows the
    ingest store: called again while ingest runs, it gives the shards finished since."""

    name = "generate"
    workers = 0  # in the driver: one engine per process, which batches across tasks itself

    def __init__(self, cfg: GenerateConfig, seed: int, base: Path, pages_dir: Path, out: Path,
                 session: Session | None = None, *, follows: bool = True, resolved: str = "") -> None:
        """cfg and seed: the recipe's generate section and seed; follows: false where ingest.dedup
        is on (what it leaves out is known once every ingest task is done); resolved: the recipe
        as YAML, kept beside the candidates."""
        self.cfg, self.seed, self.base, self.out = cfg, seed, base, out
        self.follows, self.resolved = follows, resolved
        self.templates = recipe_templates(cfg, base)  # a missing template fails here, on the driver
        if session is None:
            check_vision(cfg, base)  # and a model without vision, before any work
        self.key = key_config(cfg, seed, self.templates)
        self.pages_dir = pages_dir
        self.upstream = TaskStore.of(pages_dir, "ingest")
        self.store = TaskStore.of(out, "generate")
        self.session = session
        self.prompter: Prompter | None = None
        self._markers_read: dict = {}
        self.duplicates: dict[str, dict] = {}  # by ingest shard: what ingest.dedup leaves out
        self._generated = [0.0, 0]  # seconds and output tokens of the generation run here

    def begin(self) -> None:
        if not self.upstream.root.is_dir():
            raise DocsynthError(f"{self.pages_dir} is not an ingest output (no {self.upstream.root.name}/ folder); "
                                "run docsynth ingest first")
        self.store.prepare()
        if self.resolved:
            atomic_write_text(RunDir(self.out).recipe("generate"), self.resolved)

    def plan(self) -> list[GenerateTask]:
        """One task per finished ingest shard so far, keyed by that shard's own key and this
        stage's config."""
        self.duplicates = read_duplicates(self.pages_dir)
        return [self.task_of(f) for f in self.upstream.finished(self._markers_read, verify=True, keep=UPSTREAM_KEYS)]

    def task_of(self, ingested: Finished) -> GenerateTask:
        """The task of one finished ingest task (and what ingest.dedup leaves out of it)."""
        skip = self.duplicates.get(ingested.shard.name)
        return GenerateTask(ingested.index, config_hash({"pages": ingested.info["key"], **({"skip": skip} if skip else {})},
                                                        self.key),
                            str(ingested.shard), ingested.info["pages"], skip)

    @property
    def opening(self) -> str:
        g = self.cfg
        return "" if self.prompter is not None else f"starting the {g.backend} backend for {g.model}"

    def open(self) -> None:
        """Start the backend (an in-process engine starts here, once per process)."""
        if self.prompter is None:
            self.session = self.session or open_session(self.cfg, self.base)
            self.prompter = Prompter(self.cfg, self.templates, self.session.tokens, self.session.context,
                                     images=self.session.images)
            self.prompter.check()

    def run(self, tasks: list[GenerateTask]):
        """Consecutive tasks' samples go to the backend together, about generate.batch_samples at
        a time (the engine batches across documents); each task's shard is written as soon as
        its samples are done."""
        # The next wave is planned (shards read, page images fitted: 15 ms a page at 150 dpi) by a
        # thread while the engine works on this one.
        for wave in prefetch(_waves(tasks, self.cfg, self.seed), depth=1):
            g0 = time.perf_counter()
            samples = [s for _, ss, _, _ in wave for s in ss]
            outcomes = generate_outcomes(self.session, self.prompter, samples, self.cfg, self.seed)
            for task, ss, rejects, gated in wave:
                info = _write_task(self.store, task, ss, outcomes, rejects, self.cfg)
                info["gated"] = gated
                self._generated[1] += info["output_tokens"]
                yield task, info  # committed by the executor as soon as its shard is written
            self._generated[0] += time.perf_counter() - g0

    def crashed(self, task: GenerateTask) -> dict | None:
        return None

    def finish(self, tasks: list[GenerateTask], markers: dict[int, dict], reused: set[int], t0: float) -> GenerateSummary:
        if not tasks:
            raise DocsynthError(f"{self.upstream.root} holds no finished ingest shards")
        s = _summarize(self.cfg, self.out, sorted(tasks, key=lambda t: t.index), self.store, markers, t0)
        s.tasks_skipped = len(reused)
        seconds, tokens = self._generated
        s.output_tokens_per_s = round(tokens / seconds, 1) if seconds else 0.0  # this process's generation only
        return s


def _waves(todo: list[GenerateTask], cfg, seed: int):
    """Consecutive tasks with their planned samples, about batch_samples samples at a time."""
    wave, size = [], 0
    for task in todo:
        rejects: list[Reject] = []
        gated: list = []
        samples = plan_samples(Path(task.shard), cfg, seed, rejects, task.skip, gated)
        wave.append((task, samples, rejects, gated))
        size += len(samples)
        if size >= cfg.batch_samples:
            yield wave
            wave, size = [], 0
    if wave:
        yield wave


def _write_task(store: TaskStore, task: Task, samples: list[Sample], outcomes: dict[str, Outcome],
                rejects: list[Reject], cfg: GenerateConfig) -> dict:
    """Stream the task's page images from its ingest shard into candidate rows, then commit."""
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
        stats["grounded"] += sum(is_grounded(p.answer, s.text, GROUNDED_AT) for p in o.pairs)
        return Candidate(s.sample_id, s.doc_id, s.source, s.pages, imgs, fmt, s.text, s.truncated,
                         [p.question for p in o.pairs], [p.answer for p in o.pairs], s.template, cfg.model,
                         cfg.backend, sampling, o.seeds, o.attempts, [c.finish_reason for c in cs],
                         sum(c.prompt_tokens for c in cs), sum(c.output_tokens for c in cs),
                         [c.text or "" for c in cs], o.evidence or [None] * len(o.pairs))

    def candidates():
        """Candidates in shard order, as each sample's last page image streams past."""
        cols = ["doc_id", "page", "image", "image_format"]
        for batch in pq.ParquetFile(task.shard).iter_batches(batch_size=32, columns=cols):
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
    return {"samples": len(samples), "samples_ok": stats["ok"], "pages": stats["pages"], "pairs": stats["pairs"],
            "grounded": stats["grounded"], "prompt_tokens": stats["prompt_tokens"],
            "output_tokens": stats["output_tokens"], "templates": dict(templates), "dropped": dict(dropped),
            "rejects": [r.to_dict() for r in rejects]}


def _summarize(cfg: GenerateConfig, out: Path, tasks: list[GenerateTask], store: TaskStore, markers, t0: float
               ) -> GenerateSummary:
    model = cfg.model
    reasons = write_rejects(RunDir(out).rejects("generate"), (r for t in tasks for r in markers[t.index]["rejects"]))
    total = Counter()
    templates: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    gated: Counter[str] = Counter()
    for t in tasks:
        m = markers[t.index]
        dropped.update(m["dropped"])
        gated.update(why for _, _, why in m.get("gated", []))
        total.update({k: m[k] for k in ("samples", "samples_ok", "pages", "pairs", "grounded", "prompt_tokens",
                                         "output_tokens")})
        templates.update(m["templates"])
    s = GenerateSummary(
        out_dir=str(out), model=model, tasks=len(tasks), samples=total["samples"], samples_ok=total["samples_ok"],
        pages=total["pages"], pages_gated=dict(sorted(gated.items())), pairs=total["pairs"],
        templates=dict(sorted(templates.items())),
        pairs_dropped=dict(sorted(dropped.items())),
        pairs_per_page=round(total["pairs"] / total["pages"], 2) if total["pages"] else 0.0,
        grounded_share=round(total["grounded"] / total["pairs"], 3) if total["pairs"] else 0.0,
        rejects=sum(reasons.values()), reject_reasons=dict(reasons),
        rejects_file=str(RunDir(out).rejects("generate")), prompt_tokens=total["prompt_tokens"],
        output_tokens=total["output_tokens"], shards=len(tasks))
    s.seconds = round(time.perf_counter() - t0, 3)
    manifest = {"stage": "generate", "model": model, "backend": cfg.backend,
                "versions": {"docsynth": __version__}, "tasks": len(tasks), "samples": s.samples,
                "samples_ok": s.samples_ok, "pairs": s.pairs, "rejects": s.rejects, "pages_gated": s.pages_gated,
                "shards": [p.name for p in store.shards(tasks)]}
    RunDir(out).write_manifest("generate", manifest)
    return s
