"""The end of the write stage, on the driver: the tasks' parts cut into the dataset's shards (a
row group at a time: memory holds one row group, whatever `write.shard_rows`), the tasks'
markers added up into the summary and the card, every drop into RUN/filter-rejects.jsonl, and
the new version made live in one rename (docsynth.dataset.versions).

Markers are read one at a time from the store (`markers()` gives a fresh pass each call), so
the driver holds no list of rows, rejects or shards, at any corpus size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.config.recipe import Recipe
from docsynth.core.duplicates import duplicate_counts
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write
from docsynth.core.rundir import RunDir
from docsynth.dataset.cauldron import DATASET_SCHEMA
from docsynth.dataset.shards import ShardCutter
from docsynth.dataset.stats import StatsAccumulator
from docsynth.dataset.versions import begin, stage_version, switch
from docsynth.write.card import dataset_card
from docsynth.write.decontam import WriteDecontam
from docsynth.write.verdicts import Quality

READ_ROWS = 256  # rows read from a part at a time
_COUNTS = ("samples_in", "samples_out", "pairs_in", "pairs_out", "samples_dropped")


def totals(markers: Iterator[tuple[Path, dict]], verdicts_used: bool) -> dict:
    """The tasks' counts added up: samples and pairs in and out, drops by filter, quality."""
    n = dict.fromkeys(_COUNTS, 0)
    dropped: Counter[str] = Counter()
    quality = Quality(used=verdicts_used)
    for _, info in markers:
        for k in _COUNTS:
            n[k] += info[k]
        dropped.update(info["dropped"])
        quality.merge(info["quality"])
    return {**n, "dropped": dict(sorted(dropped.items())), "quality": quality.to_dict()}


def write_rejects(run_dir: Path, markers: Iterator[tuple[Path, dict]]) -> None:
    """RUN/filter-rejects.jsonl: every task's drops, in task order, streamed."""
    def write(tmp: Path) -> None:
        with tmp.open("w") as f:
            for _, info in markers:
                f.writelines(r + "\n" for r in info["rejects"])
    atomic_write(RunDir(run_dir).rejects("write"), write)


def assemble(recipe: Recipe, run_dir: Path, out: Path, markers: Callable[[], Iterator[tuple[Path, dict]]],
             key: str, verdicts_used: bool, decontam: WriteDecontam | None, summary) -> list[str]:
    """Write the dataset's new version from the parts (each marker with its part), and make it
    live; fills `summary` (a WriteSummary) and returns the names of the version's shards."""
    s = summary
    for k, v in totals(markers(), verdicts_used).items():
        setattr(s, k, v)
    s.decontamination = decontam.finish(info["decontam"] for _, info in markers()) if decontam else {}
    s.duplicates = duplicate_counts(run_dir)
    rejects = RunDir(run_dir).rejects("write")
    if not s.samples_in:
        raise DocsynthError(f"{run_dir} holds no QA candidates to write: generate rejected every sample "
                            f"(reasons in {run_dir / 'generate-rejects.jsonl'}; docsynth rejects {run_dir})")
    write_rejects(run_dir, markers())
    if not s.samples_out:
        raise DocsynthError(f"no sample is left after filtering ({s.samples_in} in; pairs dropped by filter: "
                            f"{s.dropped or 'none'}; each with its reason in {rejects}); "
                            "nothing written: loosen the recipe's filters")
    cfg = recipe.write
    data = begin(out)
    stats = StatsAccumulator()
    cutter = ShardCutter(lambda i: data / f".part-{i:05d}.parquet", DATASET_SCHEMA, cfg.shard_rows, cfg.shard_bytes,
                         cfg.row_group_bytes)
    templates: Counter[str] = Counter()
    models: set[str] = set()
    examples: list[dict] = []
    try:
        for part, info in markers():
            templates.update(info["templates"])
            models.update(info["models"])
            examples += info["examples"][:cfg.card_examples - len(examples)]
            for batch in pq.ParquetFile(part).iter_batches(batch_size=READ_ROWS):
                stats.add(batch)
                cutter.add(batch)
        parts = cutter.close()
    except BaseException:
        cutter.abort()
        raise
    version = stage_version(out, parts, key)
    s.shards = len(version.names)
    s.bytes = sum(p.stat().st_size for p in version.shards)
    switch(out, dataset_card(recipe, s, templates, sorted(models), examples, stats.result(), version.pattern), version)
    return version.names
