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

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import docsynth
from docsynth.dataset.adapters import broken_rows, cap_and_split, piece_counts, source_columns, to_cauldron
from docsynth.dataset.cauldron import SCHEMA, WRITE_OPTIONS, card_header, clear_leftovers, publish_parts, row_group_rows
from docsynth.dataset.permute import Permutation
from docsynth.dataset.sources import Source, SourceError, Unit, open_source
from docsynth.errors import DocsynthError
from docsynth.mixture import Mixture
from docsynth.run.tasks import atomic_write, atomic_write_text

log = logging.getLogger(__name__)

SPILL_BUFFER_BYTES = 192_000_000  # rows held for the spill files before they are written
_POS = "__pos"


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


def run_mix(m: Mixture, out: Path, progress: Progress | None = None, spill_buffer: int = SPILL_BUFFER_BYTES) -> MixSummary:
    """Plan, scatter and gather the mixture into OUT (see the module docstring)."""
    t0 = time.perf_counter()
    plans = plan_mixture(m)
    total = sum(p.count for p in plans)
    est_bytes = sum(p.count * p.row_bytes for p in plans)
    n_shards = max(1, int(np.ceil(est_bytes / m.shard_bytes)))
    if m.shard_rows:
        n_shards = max(n_shards, -(-total // m.shard_rows))
    n_shards = min(n_shards, total)
    reports = {p.src.name: SourceReport(p.src.name, str(p.src.cfg.path), p.src.kind, p.rows, p.count,
                                        requested_share=p.count / total, epochs=p.count / p.rows) for p in plans}
    data = out / "data"
    spill = out / ".spill"
    shutil.rmtree(spill, ignore_errors=True)
    spill.mkdir(parents=True)
    data.mkdir(exist_ok=True)
    clear_leftovers(data)
    try:
        read = _scatter(m, plans, total, n_shards, spill, reports, spill_buffer, progress)
        shards, parts = _gather(m, spill, data, n_shards, progress)
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        clear_leftovers(data)
        raise
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
    atomic_write_text(out / "README.md", mixture_card(m, s))
    s.seconds = round(time.perf_counter() - t0, 3)
    return s


def _scatter(m: Mixture, plans: list[SourcePlan], total: int, n_shards: int, spill: Path,
             reports: dict[str, SourceReport], budget: int, progress: Progress | None) -> int:
    """Stream every source once and put each wanted row, with its place, in its shard's spill."""
    place = Permutation(total, m.seed)
    buffers: dict[int, list[pa.RecordBatch]] = {}
    held = 0
    flushes = 0

    def flush() -> None:
        nonlocal held, flushes
        for shard, batches in buffers.items():
            path = spill / f"{shard:05d}-{flushes:05d}.arrow"
            with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, batches[0].schema) as w:
                for b in batches:
                    w.write_batch(b)
        buffers.clear()
        held = 0
        flushes += 1

    todo = {p.src.name: _wanted_units(p, m.seed) for p in plans}
    work = sum(u.bytes for units in todo.values() for u in units)
    done = 0
    for p in plans:
        perm = p.perm(m.seed)
        report = reports[p.src.name]
        starts = np.cumsum([0, *p.unit_pieces])
        unit_at = {u.start: i for i, u in enumerate(p.src.units)}
        piece = 0
        for start, batch in p.src.read(todo[p.src.name], p.columns):
            if start in unit_at:  # a unit's first batch: pieces are counted from the unit's start
                u = p.src.units[unit_at[start]]
                piece = int(starts[unit_at[start]])
                done_unit = u.bytes
            rows = cap_and_split(to_cauldron(p.src, batch), p.src.cfg.turns)
            first, piece = piece, piece + rows.num_rows
            local, number = p.entries(perm, first, rows.num_rows)
            if len(local):
                local, number = _drop_broken(p, rows, local, number, first, report)
            if len(local):
                pos = place(number)
                shard = pos * n_shards // total
                order = np.argsort(shard, kind="stable")
                chosen = rows.take(pa.array(local[order]))
                chosen = chosen.append_column(_POS, pa.array(pos[order]))
                shard = shard[order]
                cuts = np.flatnonzero(np.diff(shard)) + 1
                for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(shard)]):
                    buffers.setdefault(int(shard[a]), []).append(chosen.slice(a, b - a))
                held += chosen.nbytes
                report.realised += len(local)
                if held >= budget:
                    flush()
            if progress and start + batch.num_rows >= u.start + u.rows:
                done += done_unit
                progress("read", done, work)
    if buffers:
        flush()
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
    uniq = np.unique(local)
    bad = broken_rows(rows.take(pa.array(uniq)), mode)
    if not bad:
        return local, number
    bad_local = {int(uniq[i]): why for i, why in bad.items()}
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


def _gather(m: Mixture, spill: Path, data: Path, n_shards: int, progress: Progress | None) -> tuple[list[dict], list[Path]]:
    """Write each shard from its spill files, rows in their places."""
    files: dict[int, list[Path]] = {}
    for f in sorted(spill.glob("*.arrow")):
        files.setdefault(int(f.name.split("-")[0]), []).append(f)
    shards, parts = [], []
    for shard in range(n_shards):
        tables = []
        for f in files.get(shard, []):
            tables.append(pa.ipc.open_stream(pa.memory_map(str(f))).read_all())  # zero-copy
        if not tables:  # every row of this shard was left out (broken images)
            continue
        t = pa.concat_tables(tables)
        order = np.argsort(t.column(_POS).to_numpy(), kind="stable")
        t = t.drop_columns([_POS])
        part = data / f".part-{len(parts):05d}.parquet"
        group = row_group_rows(t, m.row_group_bytes)

        def write(tmp: Path, t=t, order=order, group=group) -> None:
            with pq.ParquetWriter(tmp, SCHEMA, **WRITE_OPTIONS) as w:
                for a in range(0, t.num_rows, group):
                    w.write_table(t.take(pa.array(order[a:a + group])), row_group_size=group)

        atomic_write(part, write)
        del t, tables
        for f in files.get(shard, []):
            f.unlink()
        parts.append(part)
        shards.append({"rows": len(order), "bytes": part.stat().st_size, "sha256": _sha256(part)})
        if progress:
            progress("write", shard + 1, n_shards)
    return shards, parts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def mixture_card(m: Mixture, s: MixSummary) -> str:
    """README.md: the Hub's YAML header, and the sources with requested and realised shares."""
    header = card_header(m.license, m.name, s.rows, s.bytes, ["mixture"])
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "", f"# {m.name}", "",
             f"A training mixture of {len(s.sources)} sources in the schema of The Cauldron (`images`; `texts` of "
             f"user/assistant/source), shuffled with seed {m.seed} into {len(s.shards)} shards. Made with docsynth "
             f"{docsynth.__version__}; `mixture.json` has the shards' sha256 and `mixture.yaml` the mixture file.", "",
             "| source | rows available | requested | realised | share | epochs | broken images left out |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in s.sources:
        lines.append(f"| {r.name} | {r.rows_available:,} | {r.requested:,} | {r.realised:,} | "
                     f"{100 * r.realised_share:.2f}% | {r.epochs:.2f} | {r.broken_images:,} |")
    lines += ["", f"{s.rows:,} rows, {s.bytes / 1e6:,.1f} MB.", ""]
    return "\n".join(lines)
