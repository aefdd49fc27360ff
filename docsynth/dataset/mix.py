"""The mixer: many Cauldron-style sources in, one weighted, globally shuffled, sharded mixture out.

    OUT/data/train-XXXXX-of-NNNNN.parquet   the mixture, in the Cauldron schema
    OUT/mixture.json                        sources (requested vs realised), seed, shards (rows, sha256)
    OUT/mixture.yaml                        the resolved mixture file
    OUT/README.md                           dataset card

How, in bounded memory whatever the total:
1. Plan: every source is opened (footers only) and checked before anything is written. Each is
   given a row count (weight / repeat / max_samples). A source of n rows asked for c rows gives
   every row c // n times, plus the c % n rows a seeded permutation of the source ranks first:
   without replacement until the source is exhausted, then by repeat.
2. Scatter: the output rows are numbered source by source, and a seeded permutation of 0..N-1
   (a Feistel network: no index held in memory) gives each its place in the mixture, hence its
   shard. Sources are streamed row group by row group (units without a wanted row are not read);
   wanted rows go, with their place, to spill files of their shard.
3. Gather: shard by shard, the spill files are read, ordered by place and written as parquet.
Each byte is read twice and written twice, so memory holds one shard and the spill buffer.
The same inputs and seed give byte-identical shards.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import docsynth
from docsynth.dataset.adapters import broken_rows, cap_and_split, piece_counts, source_columns, to_cauldron
from docsynth.dataset.cauldron import SCHEMA, WRITE_OPTIONS, card_front, card_header, clear_leftovers, publish_parts
from docsynth.dataset.permute import Permutation
from docsynth.dataset.shuffle import Spill, merge_runs, prefetch
from docsynth.dataset.sources import Source, SourceError, Unit, open_source
from docsynth.errors import DocsynthError
from docsynth.stats import Stats, StatsAccumulator, stats_markdown
from docsynth.mixture import Mixture
from docsynth.run.tasks import atomic_write, atomic_write_text, file_sha256

log = logging.getLogger(__name__)

SPILL_BUFFER_BYTES = 128_000_000  # rows held before they are written to the spill's sorted runs (x2 while writing)


@dataclass(slots=True)
class SourcePlan:
    """One source's part of the mixture."""

    src: Source
    columns: list[str]
    rows: int  # rows the source offers (pieces, when turns.split cuts rows)
    count: int  # rows asked of it
    offset: int = 0  # where its output rows start in the numbering of all output rows
    unit_pieces: list[int] = field(default_factory=list)  # rows each unit offers (after splitting)
    row_bytes: float = 0.0

    @property
    def epochs(self) -> int:
        return self.count // self.rows

    @property
    def remainder(self) -> int:
        return self.count % self.rows

    def perm(self, seed: int) -> Permutation:
        return Permutation(self.rows, seed, *self.src.name.encode())

    def entries(self, perm: Permutation, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """For the source rows first..first+n-1: (row within the batch, output row number) of
        every copy of them the mixture takes."""
        i = np.arange(first, first + n, dtype=np.int64)
        local = [np.arange(n)] * self.epochs
        number = [i + j * self.rows for j in range(self.epochs)]
        if self.remainder:
            rank = perm.inverse(i)
            take = rank < self.remainder
            local.append(np.flatnonzero(take))
            number.append(self.epochs * self.rows + rank[take])
        if not local:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(local), np.concatenate(number) + self.offset


@dataclass(slots=True)
class SourceReport:
    name: str
    path: str
    kind: str
    rows_available: int
    requested: int
    realised: int = 0
    requested_share: float = 0.0
    realised_share: float = 0.0
    epochs: float = 0.0
    broken_images: int = 0  # rows left out for a broken image
    broken_examples: list[dict] = field(default_factory=list)


@dataclass(slots=True)
class MixSummary:
    out_dir: str
    name: str
    seed: int
    rows: int = 0
    requested: int = 0
    bytes: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    sources: list[SourceReport] = field(default_factory=list)
    shards: list[dict] = field(default_factory=list)

    @property
    def rejects(self) -> int:
        return sum(s.broken_images for s in self.sources)

    def to_dict(self) -> dict:
        return asdict(self)


Progress = Callable[[str, int, int], None]  # (phase, done, total)


def plan_mixture(m: Mixture) -> list[SourcePlan]:
    """Open and check every source and give each its row count; one SourceError lists every
    problem, before anything is written."""
    problems, plans = [], []
    for cfg in m.sources:
        try:
            src = open_source(cfg)
            cols = source_columns(src)
            plans.append(SourcePlan(src, cols, 0, 0))
        except SourceError as e:
            problems.append(str(e))
    if problems:
        raise SourceError(f"{len(problems)} of {len(m.sources)} sources cannot be used:\n"
                          + "\n".join(f"  - {p}" for p in problems))
    for p in plans:
        p.unit_pieces = _unit_pieces(p)
        p.rows = sum(p.unit_pieces)
        p.row_bytes = sum(u.bytes for u in p.src.units) / max(p.rows, 1)
        if p.rows == 0:
            problems.append(f"source '{p.src.name}' has no rows ({p.src.cfg.path})")
    if problems:
        raise SourceError("\n".join(problems))
    _apportion(m, plans)
    offset = 0
    for p in plans:
        p.offset, offset = offset, offset + p.count
    return plans


def _unit_pieces(p: SourcePlan) -> list[int]:
    """Rows each unit offers: its row count, or, when turns are split, the pieces its rows become
    (a pass over the text columns only)."""
    turns = p.src.cfg.turns
    if turns.split is None:
        return [u.rows for u in p.src.units]
    text_cols = ["texts"] if p.src.cfg.adapter is None else p.columns
    pieces = [0] * len(p.src.units)
    index = {u.start: i for i, u in enumerate(p.src.units)}
    unit_of = 0
    for start, batch in p.src.read(p.src.units, text_cols):
        if start in index:
            unit_of = index[start]
        if p.src.cfg.adapter is not None:
            batch = to_cauldron(p.src, batch, images=False)
        pieces[unit_of] += int(piece_counts(batch, turns).sum())
    return pieces


def _apportion(m: Mixture, plans: list[SourcePlan]) -> None:
    fixed = 0
    for p in plans:
        c = p.src.cfg
        if c.repeat is not None:
            p.count = int(c.repeat * p.rows + 0.5)
        elif c.max_samples is not None:
            p.count = min(c.max_samples, p.rows)
        else:
            continue
        fixed += p.count
    weighted = [p for p in plans if p.src.cfg.weight is not None]
    if not weighted:
        if m.total is not None and m.total != fixed:
            raise DocsynthError(f"total is {m.total:,} but the sources' repeat and max_samples give {fixed:,} rows; "
                                "drop total, or give some sources a weight")
        return
    left = m.total - fixed
    if left < len(weighted):
        raise DocsynthError(f"total is {m.total:,} but the repeat/max_samples sources take {fixed:,} rows, "
                            f"leaving {max(left, 0):,} for {len(weighted)} weighted sources")
    weights = np.array([p.src.cfg.weight for p in weighted])
    quota = left * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    for i in np.argsort(-(quota - counts), kind="stable")[: left - counts.sum()]:  # largest remainders
        counts[i] += 1
    for p, c in zip(weighted, counts):
        p.count = int(c)


def _reports(plans: list[SourcePlan], total: int) -> dict[str, SourceReport]:
    return {p.src.name: SourceReport(p.src.name, str(p.src.cfg.path), p.src.kind, p.rows, p.count,
                                     requested_share=p.count / total, epochs=p.count / p.rows) for p in plans}


def plan_summary(m: Mixture, out: Path) -> MixSummary:
    """What `run_mix` would do (sources checked, rows per source, estimated bytes), writing nothing."""
    plans = plan_mixture(m)
    total = sum(p.count for p in plans)
    return MixSummary(str(out), m.name, m.seed, requested=total, bytes=int(sum(p.count * p.row_bytes for p in plans)),
                      sources=list(_reports(plans, total).values()))


def run_mix(m: Mixture, out: Path, progress: Progress | None = None, spill_buffer: int = SPILL_BUFFER_BYTES,
            spill_dir: Path | None = None) -> MixSummary:
    """Plan, scatter and gather the mixture into OUT (see the module docstring). The spill (about
    the mixture's size, for the length of the run) goes to spill_dir, default OUT/.spill."""
    t0 = time.perf_counter()
    plans = plan_mixture(m)
    total = sum(p.count for p in plans)
    est_bytes = sum(p.count * p.row_bytes for p in plans)
    n_shards = max(1, int(np.ceil(est_bytes / m.shard_bytes)))
    if m.shard_rows:
        n_shards = max(n_shards, -(-total // m.shard_rows))
    n_shards = min(n_shards, total)
    reports = _reports(plans, total)
    data = out / "data"
    spill = (spill_dir / f".docsynth-spill-{os.getpid()}") if spill_dir else out / ".spill"
    shutil.rmtree(spill, ignore_errors=True)
    spill.mkdir(parents=True)
    data.mkdir(parents=True, exist_ok=True)
    clear_leftovers(data)
    runs = Spill(spill, spill_buffer)
    try:
        read = _scatter(m, plans, total, n_shards, runs, reports, progress)
        stats = StatsAccumulator()
        shards, parts = _gather(m, runs, data, total, n_shards, est_bytes / total, stats, progress)
    except BaseException:
        runs.close()
        shutil.rmtree(spill, ignore_errors=True)
        clear_leftovers(data)
        raise
    runs.close()
    shutil.rmtree(spill, ignore_errors=True)
    final = publish_parts(data, parts)
    for s, path in zip(shards, final):
        s["path"] = str(path.relative_to(out))
    s = MixSummary(str(out), m.name, m.seed, rows=sum(x["rows"] for x in shards), requested=total,
                   bytes=sum(x["bytes"] for x in shards), bytes_read=read, shards=shards)
    for r in reports.values():
        r.realised_share = r.realised / max(s.rows, 1)
        s.sources.append(r)
    manifest = {"docsynth_version": docsynth.__version__, **s.to_dict(), "mixture": m.model_dump(mode="json")}
    manifest.pop("seconds")
    manifest.pop("out_dir")
    manifest.pop("bytes_read")
    atomic_write_text(out / "mixture.json", json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False))
    atomic_write_text(out / "mixture.yaml", yaml.safe_dump(m.model_dump(mode="json"), sort_keys=False))
    atomic_write_text(out / "README.md", mixture_card(m, s, stats.result()))
    s.seconds = round(time.perf_counter() - t0, 3)
    return s


def _scatter(m: Mixture, plans: list[SourcePlan], total: int, n_shards: int, spill: Spill,
             reports: dict[str, SourceReport], progress: Progress | None) -> int:
    """Stream every source once and give each wanted row, with its place, to the spill."""
    place = Permutation(total, m.seed)
    todo = {p.src.name: _wanted_units(p, m.seed) for p in plans}
    work = sum(u.bytes for units in todo.values() for u in units)
    done = 0
    for p in plans:
        perm = p.perm(m.seed)
        report = reports[p.src.name]
        starts = np.cumsum([0, *p.unit_pieces])
        unit_at = {u.start: i for i, u in enumerate(p.src.units)}
        piece = 0
        for start, batch in prefetch(p.src.read(todo[p.src.name], p.columns)):
            if start in unit_at:  # a unit's first batch: pieces are counted from the unit's start
                unit = p.src.units[unit_at[start]]
                piece = int(starts[unit_at[start]])
            rows = cap_and_split(to_cauldron(p.src, batch), p.src.cfg.turns)
            first, piece = piece, piece + rows.num_rows
            local, number = p.entries(perm, first, rows.num_rows)
            if len(local):
                local, number = _drop_broken(p, rows, local, number, first, report)
            if len(local):
                pos = place(number)
                spill.add(rows, local, pos, pos * n_shards // total)
                report.realised += len(local)
            if start + batch.num_rows >= unit.start + unit.rows:
                done += unit.bytes
                if progress:
                    progress("read", done, work)
    spill.flush(keep=True)
    return done


def _wanted_units(p: SourcePlan, seed: int) -> list[Unit]:
    """The units holding at least one row the mixture takes (all of them once it takes a row twice)."""
    if p.epochs:
        return list(p.src.units)
    perm = p.perm(seed)
    wanted, first = [], 0
    for u, n in zip(p.src.units, p.unit_pieces):
        if n and (perm.inverse(np.arange(first, first + n)) < p.remainder).any():
            wanted.append(u)
        first += n
    return wanted


def _drop_broken(p: SourcePlan, rows: pa.RecordBatch, local: np.ndarray, number: np.ndarray, first: int,
                 report: SourceReport) -> tuple[np.ndarray, np.ndarray]:
    mode = p.src.cfg.image_check
    if mode == "none":
        return local, number
    bad_local = broken_rows(rows, mode, np.unique(local))
    if not bad_local:
        return local, number
    for r, why in bad_local.items():
        where = f"row {first + r}" + (" (after splitting turns)" if p.src.cfg.turns.split else "")
        if p.src.cfg.broken_images == "fail":
            raise SourceError(f"source '{p.src.name}': {where} has a broken image: {why} (broken_images: fail; "
                              "set broken_images: skip to leave such rows out)")
        if len(report.broken_examples) < 10:
            report.broken_examples.append({"row": first + r, "reason": why})
            log.warning("source '%s': %s left out: %s", p.src.name, where, why)
    keep = ~np.isin(local, list(bad_local))
    report.broken_images += int((~keep).sum())
    return local[keep], number[keep]


def _gather(m: Mixture, spill: Spill, data: Path, total: int, n_shards: int, row_bytes: float,
            stats: StatsAccumulator, progress: Progress | None) -> tuple[list[dict], list[Path]]:
    """Write each shard from its runs, rows in order of place; hash each shard while the next is written."""
    step = max(1, int(m.row_group_bytes / max(row_bytes, 1)))
    shards, parts, hashes = [], [], []
    with ThreadPoolExecutor(1) as hasher:
        for shard in range(n_shards):
            if not spill.rows.get(shard):  # every row of it was left out (broken images)
                continue
            runs = spill.runs(shard)
            lo, hi = -(-shard * total // n_shards), -(-(shard + 1) * total // n_shards)
            part = data / f".part-{len(parts):05d}.parquet"

            def write(tmp: Path, runs=runs, lo=lo, hi=hi) -> None:
                with pq.ParquetWriter(tmp, SCHEMA, **WRITE_OPTIONS) as w:
                    for group in prefetch(_counted(merge_runs(runs, lo, hi, step), stats), 1):
                        w.write_table(group, row_group_size=group.num_rows)

            atomic_write(part, write)
            for f in runs:
                if isinstance(f, Path):
                    f.unlink()
            parts.append(part)
            hashes.append(hasher.submit(file_sha256, part))
            shards.append({"rows": spill.rows[shard], "bytes": part.stat().st_size})
            if progress:
                progress("write", shard + 1, n_shards)
        for s, h in zip(shards, hashes):
            s["sha256"] = h.result()
    return shards, parts


def _counted(groups, stats: StatsAccumulator):
    """The groups, counted into the card's statistics on the thread that merges them."""
    for g in groups:
        stats.add(g)
        yield g


def mixture_card(m: Mixture, s: MixSummary, stats: Stats) -> str:
    """README.md: the Hub's YAML header, and the sources with requested and realised shares."""
    header = card_header(m.license, m.name, s.rows, s.bytes, ["mixture"])
    lines = [card_front(header), f"# {m.name}", "",
             f"A training mixture of {len(s.sources)} sources in the schema of The Cauldron (`images`; `texts` of "
             f"user/assistant/source), shuffled with seed {m.seed} into {len(s.shards)} shards. Made with docsynth "
             f"{docsynth.__version__}; `mixture.json` has the shards' sha256 and `mixture.yaml` the mixture file.", "",
             "| source | rows available | requested | realised | share | epochs | broken images left out |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in s.sources:
        lines.append(f"| {r.name} | {r.rows_available:,} | {r.requested:,} | {r.realised:,} | "
                     f"{100 * r.realised_share:.2f}% | {r.epochs:.2f} | {r.broken_images:,} |")
    lines += ["", f"{s.rows:,} rows, {s.bytes / 1e6:,.1f} MB.", "", stats_markdown(stats)]
    return "\n".join(lines)
