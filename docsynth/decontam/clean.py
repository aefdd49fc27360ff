"""`docsynth decontaminate DATASET --against EVAL`: check a dataset against evaluation sets, and
with an output folder write a copy without (or flagging) what matched.

    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet  the dataset's rows, in order, in its own schema;
                                             drop: a row with an image hit is left out, a turn
                                             with a text hit is cut from every per-turn column
    OUT/README.md                            the card: a Decontamination section, then the input's card
    OUT/decontamination.jsonl                every hit: sample (row), turn, eval set, eval id, kind,
                                             distance or overlap

The dataset's hashes are kept (HASH_DIR under the cache folder) by each shard's path, size and
modification time: a rerun, or a new evaluation set, does not decode its images again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from docsynth.core.summary import Summary
from docsynth.core.version import __version__
from docsynth.config.section import config_hash
from docsynth.config.decontam import DecontamConfig
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write, atomic_write_text
from docsynth.core.lock import locked
from docsynth.config.mixture import SourceConfig
from docsynth.dataset.cauldron import (CARD_FEATURES, DATASET_CARD_FEATURES, DATASET_SCHEMA, SCHEMA, WRITE_OPTIONS,
                                       card_front, card_header)
from docsynth.decontam.index import (REPORT, DecontamSummary, EvalIndex, decontam_markdown, hash_source, marked,
                                       report_lines)
from docsynth.decontam.hashes import HashCache, RowHashes, file_key
from docsynth.dataset.sources import SourceError, open_source
from docsynth.dataset.versions import begin, stage_version, switch


@dataclass(slots=True)
class CleanSummary(Summary):
    dataset: str
    out_dir: str | None
    rows_in: int = 0
    rows_out: int = 0
    turns_in: int = 0
    turns_out: int = 0
    decontamination: dict = field(default_factory=dict)
    hashes_reused: int = 0  # files whose hashes were read back
    hashes_made: int = 0
    shards: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rejects: int = 0  # the CLI's exit-3 convention: nothing is rejected here

    @property
    def produced(self) -> bool:
        return self.rows_out > 0


def decontaminate_dataset(dataset: Path, cfg: DecontamConfig, out: Path | None, cache_dir: Path,
                          progress=None) -> CleanSummary:
    """Check DATASET against cfg's evaluation sets; with OUT, write the cleaned (or flagged) copy."""
    t0 = time.perf_counter()
    try:
        src = open_source(SourceConfig(name=dataset.name or str(dataset), path=dataset, repeat=1))
    except SourceError as e:
        raise DocsynthError(f"dataset {dataset}: {e}") from None
    missing = {"images", "texts"} - set(src.schema.names)
    if missing:
        raise DocsynthError(f"dataset {dataset} is not in the Cauldron schema: no {', '.join(sorted(missing))} column "
                            f"(columns: {', '.join(src.schema.names)})")
    if out is not None and out.resolve() == dataset.resolve():
        raise DocsynthError(f"--out {out} is the dataset itself: write the clean copy to another folder")
    index = EvalIndex(cfg, cache_dir / "eval", progress)  # every set checked and hashed before the dataset
    summary = DecontamSummary.start(index)
    s = CleanSummary(str(dataset), str(out) if out else None)
    cache = HashCache(cache_dir / "data", cfg.text.ngram)
    lines: list[str] = []
    hashed: list[tuple[Path, RowHashes, list, int]] = []  # file, its hashes, its hits, its first row
    for path, rh, first in hash_source(src, ["images", "texts"], cache, cfg.images.enabled, progress):
        hits = index.check(rh)
        summary.add(hits)
        lines += report_lines(sorted(hits, key=lambda h: (h.row, -1 if h.turn is None else h.turn, h.eval_set)),
                              lambda row, first=first: first + row)
        hashed.append((path, rh, hits, first))
    s.hashes_reused, s.hashes_made = cache.reused + index.reused, cache.made + index.made
    if out is not None:
        with locked(out):
            _write(src, hashed, cfg, out, summary, s, lines, dataset)
    else:
        for _, rh, _, _ in hashed:
            s.turns_in += len(rh.turn_row)
        s.rows_in = src.num_rows
    s.decontamination = summary.to_dict()
    s.seconds = round(time.perf_counter() - t0, 3)
    return s


def _write(src, hashed: list[tuple[Path, RowHashes, list, int]], cfg: DecontamConfig, out: Path,
           summary: DecontamSummary, s: CleanSummary, lines: list[str], dataset: Path) -> None:
    data = begin(out)
    drop = cfg.action == "drop"
    parts: list[Path] = []
    for path, rh, hits, _ in hashed:
        rows, turns = marked(hits) if drop else (set(), {})
        s.turns_in += len(rh.turn_row)
        summary.rows_dropped += len(rows)
        summary.turns_dropped += sum(len(t) for r, t in turns.items() if r not in rows)
        part = data / f".part-{len(parts):05d}.parquet"
        atomic_write(part, lambda tmp, path=path, rows=rows, turns=turns: _copy(path, tmp, rows, turns, s))
        parts.append(part)
    key = config_hash(cfg, [file_key(p) for p, *_ in hashed], __version__)
    version = stage_version(out, parts, key)
    s.shards = version.names
    summary.report = REPORT
    atomic_write_text(out / REPORT, "".join(lines))
    switch(out, _card(dataset, summary, s, version.pattern, src.schema, sum(p.stat().st_size for p in version.shards)),
           version)


def _copy(path: Path, tmp: Path, rows: set[int], turns: dict[int, set[int]], s: CleanSummary) -> None:
    """A shard's rows, row group by row group (memory: one group), the marked ones cut."""
    pf = pq.ParquetFile(path)
    with pq.ParquetWriter(tmp, pf.schema_arrow, **WRITE_OPTIONS) as w:
        first = 0
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g)
            s.rows_in += t.num_rows
            here = {r - first for r in rows if first <= r < first + t.num_rows}
            cut = {r - first: v for r, v in turns.items() if first <= r < first + t.num_rows}
            first += t.num_rows
            if here or cut:
                t = _cut(t, here, cut)
            s.rows_out += t.num_rows
            s.turns_out += pc.sum(pc.list_value_length(t.column("texts"))).as_py() or 0
            w.write_table(t)


def _cut(table: pa.Table, rows: set[int], turns: dict[int, set[int]]) -> pa.Table:
    """The table without the marked rows, and without the marked turns in every per-turn column
    (a list column as long as `texts` in each row); *_min columns follow their *_ratings."""
    records = table.to_pylist()
    n = [len(r["texts"] or []) for r in records]
    per_turn = [c for c in table.column_names
                if pa.types.is_list(table.schema.field(c).type) and c != "images"
                and all(len(r[c] or []) == k for r, k in zip(records, n) if r[c] is not None)]
    kept = []
    for i, r in enumerate(records):
        if i in rows:
            continue
        cut = turns.get(i)
        if cut:
            for c in per_turn:
                if r[c] is not None:
                    r[c] = [v for t, v in enumerate(r[c]) if t not in cut]
            for c in per_turn:
                low = c.removesuffix("_ratings") + "_min"
                if c.endswith("_ratings") and low in r:
                    vals = [v for v in r[c] or [] if v is not None]
                    r[low] = min(vals) if vals else None
            if not r["texts"]:
                continue  # every turn was cut: nothing is left of the sample
        kept.append(r)
    return pa.Table.from_pylist(kept, schema=table.schema)


def _card(dataset: Path, summary: DecontamSummary, s: CleanSummary, pattern: str, schema: pa.Schema, nbytes: int) -> str:
    old = (dataset / "README.md").read_text(errors="replace") if (dataset / "README.md").is_file() else ""
    body = old.split("---", 2)[2] if old.startswith("---") and old.count("---") >= 2 else old
    plain = schema.remove_metadata()
    features = next((f for sch, f in ((DATASET_SCHEMA, DATASET_CARD_FEATURES), (SCHEMA, CARD_FEATURES))
                     if plain.equals(sch.remove_metadata())), None)
    header = card_header("other", f"{dataset.name} (decontaminated)", s.rows_out, nbytes, ["decontaminated"],
                         pattern, features or [])
    if features is None:  # another schema: datasets reads the features from the parquet files themselves
        header["dataset_info"].pop("features")
    return "\n".join([card_front(header), f"# {dataset.name}, decontaminated", "",
                      f"`{dataset}` checked with docsynth {__version__}: {s.rows_in:,} rows in, "
                      f"{s.rows_out:,} out; {s.turns_in:,} turns in, {s.turns_out:,} out.", "",
                      *decontam_markdown(summary.to_dict()),
                      "## The dataset's own card", "", body.strip(), ""])
