"""One write task: a candidate shard's samples filtered (and checked against evaluation sets)
into a part of Cauldron rows, RUN/filtered/task-NNNNN.parquet, written a row group at a time.

What the dataset's card and summary need of the task (counts, the first examples, every drop
with its reason) goes into the task's marker, so the driver that assembles the dataset reads
markers one at a time and holds no task's rows (docsynth.write.assemble).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.records import RATED_AXES, reason_kind
from docsynth.dataset.cauldron import DATASET_SCHEMA, cauldron_row, rows_to_table
from docsynth.dataset.shards import RowGroupFile, image_bytes
from docsynth.write.decontam import WriteDecontam
from docsynth.write.filters import Pair, apply_filters
from docsynth.write.verdicts import Quality, pairs_of, read_verdicts

COLUMNS = ["sample_id", "doc_id", "source", "pages", "images", "text", "questions", "answers", "template", "model",
           "evidence"]
BATCH_ROWS = 64  # candidates read, and rows written, at a time


@dataclass(frozen=True, slots=True)
class PartConfig:
    """What a write task needs of the recipe."""

    name: str  # the recipe's: each row's source says which recipe made it
    filters: list  # built filters (docsynth.write.filters.build_filters)
    card_examples: int
    row_group_bytes: int


def write_part(cfg: PartConfig, candidates: Path, candidates_sha256: str, verdicts: str | None, out: Path,
               decontam: WriteDecontam | None) -> dict:
    """Filter one candidate shard into the part at `out` (it has no row when every sample is
    dropped); returns the task's marker info."""
    judged = read_verdicts(verdicts)
    hits = {}
    if decontam is not None:
        decontam.task()
        hits = decontam.shard(candidates, candidates_sha256)
    quality = Quality(used=verdicts is not None)
    dropped: Counter[str] = Counter()
    templates: Counter[str] = Counter()
    models: set[str] = set()
    rejects: list[str] = []
    examples: list[dict] = []
    n = {"samples_in": 0, "samples_out": 0, "pairs_in": 0, "pairs_out": 0, "samples_dropped": 0}
    part = RowGroupFile(out, DATASET_SCHEMA, cfg.row_group_bytes)
    try:
        at = -1  # the row within the shard, as decontam counts
        f = pq.ParquetFile(candidates)
        have = set(f.schema_arrow.names)  # a shard from before answer-first has no evidence
        for batch in f.iter_batches(batch_size=BATCH_ROWS, columns=[x for x in COLUMNS if x in have]):
            rows = []
            for c in batch.to_pylist():
                at += 1
                n["samples_in"] += 1
                n["pairs_in"] += len(c["questions"])
                v = judged.get(c["sample_id"])
                pairs = pairs_of(c, v)
                kept, gone = apply_filters(pairs, cfg.filters)
                if at in hits:  # an image hit takes every pair the filters kept; a text hit its own
                    live = [i for i, p in enumerate(pairs) if any(p is k for k in kept)]
                    whole, one = decontam.apply(c["sample_id"], hits[at], live)
                    out_now = {i: whole for i in live} if whole else one
                    gone += [(pairs[i], why) for i, why in out_now.items()]
                    kept = [pairs[i] for i in live if i not in out_now]
                quality.add(v, [any(p is k for k in kept) for p in pairs])
                for p, why in gone:
                    dropped[reason_kind(why)] += 1
                    rejects.append(_reject(c, p, why))
                if not kept:
                    n["samples_dropped"] += 1
                    rejects.append(_reject(c, None, "no pairs left after filtering"))
                    continue
                source = (f"docsynth:{cfg.name} doc:{c['doc_id']} pages:{c['pages'][0]}-{c['pages'][-1]} "
                          f"template:{c['template']} model:{c['model']}")
                row = cauldron_row(c["images"], [p.question for p in kept], [p.answer for p in kept], source,
                                   {ax: [p.ratings.get(ax) for p in kept] for ax in RATED_AXES},
                                   [p.verified for p in kept], [p.checks for p in kept], [p.evidence for p in kept])
                if len(examples) < cfg.card_examples:
                    examples.append({"source": c["source"], "pages": c["pages"], "texts": row["texts"]})
                templates[c["template"]] += 1
                models.add(c["model"])
                n["samples_out"] += 1
                n["pairs_out"] += len(kept)
                rows.append(row)
            if rows:
                table = rows_to_table(rows, DATASET_SCHEMA)
                for b in table.to_batches():
                    part.add(b, int(image_bytes(b).sum()))
        part.close()
    except BaseException:
        part.abort()
        raise
    return {**n, "dropped": dict(sorted(dropped.items())), "quality": quality.raw(),
            "decontam": decontam.result() if decontam is not None else None,
            "templates": dict(sorted(templates.items())), "models": sorted(models), "examples": examples,
            "rejects": rejects}


def _reject(c: dict, pair: Pair | None, reason: str) -> str:
    r = {"stage": "filter", "source": c["source"], "doc_id": c["doc_id"], "page": c["pages"][0],
         "sample_id": c["sample_id"], "reason": reason}
    if pair is not None:
        r.update(question=pair.question, answer=pair.answer)
    return json.dumps(r, sort_keys=True, ensure_ascii=False)
