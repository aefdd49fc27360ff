"""The recipe's `decontaminate:` section, applied by the write stage.

Each candidate shard is hashed once (its page images, every pair's question and question +
answer) and kept in RUN/hashes/ by the shard's content key, so a rewrite with other filters, or
against a new evaluation set, hashes nothing of the run again. A sample whose page image is in an
evaluation set is dropped whole (action drop), a pair whose question copies one is dropped
alone; with action flag both are kept. Every hit goes to RUN/decontamination.jsonl.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.config.decontam import DecontamConfig
from docsynth.core.files import atomic_write_text
from docsynth.decontam.index import REPORT, DecontamSummary, EvalIndex, Hit, report_lines
from docsynth.decontam.hashes import HashCache, file_key


class WriteDecontam:
    """Hits by sample for the write stage, and what it records of them: each write task checks
    its candidate shard (`task`, then `shard` and `apply`, then `result`, all in the process
    that runs it), and the driver adds up the tasks' results (`finish`)."""

    def __init__(self, cfg: DecontamConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.index = EvalIndex(cfg, run_dir / "hashes" / "eval")  # every set checked before any writing
        self.cache = HashCache(run_dir / "hashes" / "candidates", cfg.text.ngram)
        self.summary = DecontamSummary.start(self.index)
        self.lines: list[str] = []

    def key(self) -> list:
        """What the dataset depends on here: the settings and the evaluation sets' files."""
        return [self.cfg.model_dump(mode="json"), self.index.files]

    def shard(self, shard: Path, sha256: str | None) -> dict[int, list[Hit]]:
        """The hits of a candidate shard's samples (its bytes' sha256 keys its hashes), by row."""
        def rows():
            i = 0
            for batch in pq.ParquetFile(shard).iter_batches(batch_size=64, columns=["images", "questions", "answers"]):
                for c in batch.to_pylist():
                    yield i, c["images"], list(zip(c["questions"], c["answers"]))
                    i += 1
        rh = self.cache.get(["candidates", sha256 or file_key(shard)], rows,
                            self.cfg.images.enabled)
        by_row: dict[int, list[Hit]] = defaultdict(list)
        for h in self.index.check(rh):
            by_row[h.row].append(h)
        return by_row

    def apply(self, sample_id: str, hits: list[Hit], kept: list[int]) -> tuple[str | None, dict[int, str]]:
        """For a sample with hits, and the pairs the filters kept (by index): why the sample goes
        (an image hit), and why each kept pair goes (a text hit); nothing goes when flagging.
        Hits on pairs the filters dropped are not counted or reported."""
        hits = [h for h in hits if h.turn is None or h.turn in kept]
        if not hits:
            return None, {}
        self.summary.add(hits)
        self.lines += report_lines(hits, lambda _row: sample_id)
        if self.cfg.action != "drop":
            return None, {}
        image = next((h for h in hits if h.turn is None), None)
        if image is not None:
            self.summary.rows_dropped += 1
            return (f"decontaminate: page image matches {image.eval_set} row {image.eval_id} "
                    f"({image.distance} bits apart)"), {}
        pairs: dict[int, str] = {}
        for h in hits:
            pairs.setdefault(h.turn, f"decontaminate: {h.kind.replace('_', ' + ')} matches {h.eval_set} row "
                                     f"{h.eval_id} (overlap {h.overlap})")
        self.summary.turns_dropped += len(pairs)
        return None, pairs

    def task(self) -> None:
        """Start counting one task's hits."""
        self.summary = DecontamSummary.start(self.index)
        self.lines = []

    def result(self) -> dict:
        """One task's counts and report lines (its marker keeps them)."""
        return {"summary": self.summary.to_dict(), "lines": self.lines}

    def finish(self, results: Iterable[dict]) -> dict:
        """The tasks' results added up, in task order, and the report written."""
        total = DecontamSummary.start(self.index)
        lines: list[str] = []
        for r in results:
            total.merge(r["summary"])
            lines += r["lines"]
        total.report = str(self.run_dir / REPORT)
        atomic_write_text(self.run_dir / REPORT, "".join(lines))
        return total.to_dict()

