"""The verify stage: QA candidates in, per-task verdict shards out (docsynth.core.stage).

    OUT/verdicts/task-NNNNN.parquet   one per candidate shard, same index: for each sample,
                                      the verifier's answer to each question and the verdict
    OUT/verify-manifest.json          config key, model, counts, tokens

The verifier (recipe `verify:`, by default the generator's model and engine) answers each
sample's questions from the sample's text alone, in one request per sample; its answer and the
generated one are compared by docsynth.core.agree. Verdicts are a small side file, not a copy
of the candidates: images are not rewritten, and changing the filters never redoes this stage.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.summary import StageSummary
from docsynth.core.version import __version__
from docsynth.config.section import config_hash
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write
from docsynth.core.records import VERDICT_SCHEMA, Verdicts, write_in_groups
from docsynth.config.recipe import GenerateConfig, VerifyConfig
from docsynth.core.tasks import Finished, Task, TaskStore
from docsynth.core.rundir import RunDir
from docsynth.llm.session import Session, check_vision, open_session
from docsynth.verify.ask import answer_template
from docsynth.verify.check import Checker
from docsynth.verify.choice import choice_template
from docsynth.verify.judge import judge_template

_COLUMNS = ["sample_id", "text", "questions", "answers", "template", "pages", "evidence"]
ROW_GROUP_SAMPLES = 256

# What task_of reads of an upstream marker: the plan's cache of them lasts the whole run.
UPSTREAM_KEYS = ("key", "sha256", "samples_ok")


@dataclass(slots=True)
class VerifySummary(StageSummary):
    model: str = ""
    samples: int = 0
    pairs: int = 0
    checked: int = 0  # pairs the verifier answered
    agreed: int = 0
    verified_share: float = 0.0  # agreed / checked
    disagreed: dict[str, int] = field(default_factory=dict)  # by rule (docsynth.core.agree)
    unchecked: dict[str, int] = field(default_factory=dict)  # by why
    prompt_tokens: int = 0
    output_tokens: int = 0
    run_tokens: dict = field(default_factory=dict)  # this run's requests by kind, with prefix-cache hits (Checker)
    checks: dict[str, dict[str, int]] = field(default_factory=dict)  # per check: pairs it checked and agreed on

    rejects = 0  # a pair the verifier could not check is kept, unchecked: nothing is rejected here

    @property
    def produced(self) -> bool:
        return self.pairs > 0


@dataclass(slots=True)
class VerifyTask(Task):
    shard: str = ""  # the candidate shard
    candidates_sha256: str = ""  # its bytes: write uses verdicts only beside the candidates they judged
    samples: int = 0  # candidates in it (what progress counts)


def verifier_config(v: VerifyConfig, generate: GenerateConfig) -> GenerateConfig:
    """The generate section the verifier's session opens: the generator's, with the verify
    section's backend, model, engine, cpu, openai and sampling where set."""
    own = {k: getattr(v, k) for k in ("backend", "model", "model_dtype", "engine", "cpu", "openai", "vision", "text")
           if getattr(v, k) is not None}
    return generate.model_copy(update={**own, "sampling": v.sampling, "guided_json": v.guided_json})


def shares_engine(v: VerifyConfig, g: GenerateConfig) -> bool:
    """Whether the verifier runs on the generator's engine (else the generator's is stopped first:
    two engines on one CPU machine do not fit beside each other)."""
    c = verifier_config(v, g)
    return all(getattr(c, k) == getattr(g, k) for k in ("backend", "model", "model_dtype", "engine", "cpu", "openai",
                                                          "vision", "max_image_pixels", "max_pages_per_sample"))


def key_config(cfg: VerifyConfig, generate: GenerateConfig, seed: int) -> str:
    v = cfg.model_dump(mode="json")
    c = verifier_config(cfg, generate)
    return config_hash({k: v[k] for k in ("sampling", "skip_templates", "guided_json", "questions_per_request", "max_answer_chars", "min_f1",
                                          "judge", "judge_sampling", "checks", "choice_options", "votes",
                                          "vote_sampling")}, choice_template().path.read_text(),
                       c.backend, c.model, c.model_dtype, c.engine, answer_template().path.read_text(),
                       judge_template(c.vision).path.read_text() if cfg.judge else "", seed,
                       __version__, *([c.text, c.max_image_pixels] if c.vision else []))


class VerifyStage:
    """Verdicts for every candidate shard (see docsynth.core.stage)."""

    name = "verify"
    workers = 0  # in the driver: one engine per process

    def __init__(self, cfg: VerifyConfig, generate: GenerateConfig, seed: int, base: Path, run_dir: Path,
                 out: Path | None = None, session: Session | None = None) -> None:
        """cfg, generate and seed: the recipe's verify and generate sections (the verifier's model
        defaults to the generator's) and seed."""
        self.base, self.cfg, self.seed = base, cfg, seed
        self.verifier = verifier_config(cfg, generate)
        self.out = out or run_dir
        self.upstream = TaskStore.of(run_dir, "generate")
        self.store = TaskStore.of(self.out, "verify")
        self.session = session
        self.checker: Checker | None = None
        self.key = key_config(cfg, generate, seed)
        self._markers_read: dict = {}
        if session is None and cfg.enabled and not shares_engine(cfg, generate):  # else generate checks it
            check_vision(self.verifier, base)

    def begin(self) -> None:
        if not self.upstream.root.is_dir():
            raise DocsynthError(f"{self.upstream.root.parent} is not a generate output (no "
                                f"{self.upstream.root.name}/ folder); run docsynth generate first")
        self.store.prepare()

    follows = True  # one task per candidate shard, made as generate finishes each

    def plan(self) -> list[VerifyTask]:
        return [self.task_of(f) for f in self.upstream.finished(self._markers_read, verify=True, keep=UPSTREAM_KEYS)]

    def task_of(self, generated: Finished) -> VerifyTask:
        """The task of one finished generate task."""
        return VerifyTask(generated.index,
                          config_hash({"candidates": [generated.info["key"], generated.info.get("sha256")]}, self.key),
                          str(generated.shard), generated.info.get("sha256", ""), generated.info.get("samples_ok", 0))

    @property
    def opening(self) -> str:
        c = self.verifier
        return "" if self.session is not None else f"starting the {c.backend} backend for {c.model} (verifier)"

    def open(self) -> None:
        if self.session is None:
            self.session = open_session(self.verifier, self.base)
        c = self.verifier
        self.checker = Checker(self.cfg, self.seed, self.session, c.vision, c.text, c.max_image_pixels)

    def run(self, tasks: list[VerifyTask]):
        """Samples of consecutive tasks go to the backend together (verify.batch_samples)."""
        wave: list[tuple[VerifyTask, list[dict]]] = []
        size = 0
        columns = _COLUMNS + (["images"] if self.verifier.vision else [])
        for task in tasks:
            f = pq.ParquetFile(task.shard)
            have = set(f.schema_arrow.names)  # a shard from before answer-first has no evidence
            rows = [r for b in f.iter_batches(batch_size=256, columns=[c for c in columns if c in have])
                    for r in b.to_pylist()]
            wave.append((task, rows))
            size += len(rows)
            if size >= self.cfg.batch_samples:
                yield from self._wave(wave)
                wave, size = [], 0
        if wave:
            yield from self._wave(wave)

    def _wave(self, wave: list[tuple[VerifyTask, list[dict]]]):
        verdicts = iter(self.checker.check([r for _, rs in wave for r in rs]))
        for task, rs in wave:
            yield task, _write_task(self.store, task, [next(verdicts) for _ in rs])

    def crashed(self, task: VerifyTask) -> dict | None:
        return None

    def finish(self, tasks: list[VerifyTask], markers: dict[int, dict], reused: set[int], t0: float) -> VerifySummary:
        total: Counter = Counter()
        disagreed: Counter = Counter()
        unchecked: Counter = Counter()
        per_check: dict[str, Counter] = {}
        for t in tasks:
            m = markers[t.index]
            total.update({k: m[k] for k in ("samples", "pairs", "checked", "agreed", "prompt_tokens", "output_tokens")})
            disagreed.update(m["disagreed"])
            unchecked.update(m["unchecked"])
            for name, counts in m.get("checks", {}).items():
                per_check.setdefault(name, Counter()).update(counts)
        c = self.verifier
        s = VerifySummary(out_dir=str(self.out), model=c.model, tasks=len(tasks), tasks_skipped=len(reused),
                          samples=total["samples"], pairs=total["pairs"], checked=total["checked"],
                          agreed=total["agreed"],
                          verified_share=round(total["agreed"] / total["checked"], 3) if total["checked"] else 0.0,
                          disagreed=dict(sorted(disagreed.items())), unchecked=dict(sorted(unchecked.items())),
                          prompt_tokens=total["prompt_tokens"], output_tokens=total["output_tokens"],
                          run_tokens=self.checker.tokens if self.checker else {},
                          seconds=round(time.perf_counter() - t0, 3))
        s.checks = {name: dict(c) for name, c in per_check.items()}
        manifest = {"stage": "verify", "model": c.model, "backend": c.backend, "key": self.key,
                    "versions": {"docsynth": __version__}, **{k: v for k, v in s.to_dict().items()
                                                                       if k not in ("out_dir", "seconds", "run_tokens")}}
        RunDir(self.out).write_manifest("verify", manifest)
        return s


def _write_task(store: TaskStore, task: VerifyTask, verdicts: list[Verdicts]) -> dict:
    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, VERDICT_SCHEMA, compression="zstd") as w:
            write_in_groups(w, iter(verdicts), VERDICT_SCHEMA, ROW_GROUP_SAMPLES)

    atomic_write(store.shard(task), write)
    how = Counter(h for v in verdicts for h, ok in zip(v.how, v.verified) if ok is False)
    unchecked = Counter(h for v in verdicts for h, ok in zip(v.how, v.verified) if ok is None)
    return {"candidates_sha256": task.candidates_sha256, "samples": len(verdicts), "pairs": sum(len(v.verified) for v in verdicts),
            "checked": sum(ok is not None for v in verdicts for ok in v.verified),
            "agreed": sum(ok is True for v in verdicts for ok in v.verified), "disagreed": dict(how),
            "unchecked": dict(unchecked), "checks": _check_counts(verdicts), "prompt_tokens": sum(v.prompt_tokens for v in verdicts),
            "output_tokens": sum(v.output_tokens for v in verdicts)}


def _check_counts(verdicts: list[Verdicts]) -> dict[str, dict[str, int]]:
    """Per check that ran on some pair: the pairs it checked and those it agreed on."""
    counts: dict[str, Counter] = {}
    for v in verdicts:
        for c in v.checks:
            for name, ok in c.items():
                if ok is not None:
                    counts.setdefault(name, Counter()).update({"checked": 1, "agreed": int(ok)})
    return {name: {"checked": c["checked"], "agreed": c["agreed"]} for name, c in sorted(counts.items())}
