"""The mixer: many Cauldron-style sources in, one weighted, globally shuffled, sharded mixture out.

    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet  the mixture, in the Cauldron schema (version VVVVVVVV)
    OUT/mixture.json                        sources (requested vs realised), seed, shards (rows, sha256)
    OUT/mixture.yaml                        the resolved mixture file
    OUT/README.md                           dataset card, naming the live version's shards
                                            (published as in docsynth.dataset.versions)

How, in bounded memory whatever the total:
1. Plan (plan.py): every source is opened (footers only) and checked before anything is
   written, and given its row count (weight / repeat / max_samples).
2. Scatter: the output rows are numbered source by source, and a seeded permutation of 0..N-1
   (a Feistel network: no index held in memory) gives each its place in the mixture, hence its
   shard. Sources are streamed row group by row group (units without a wanted row are not read);
   wanted rows are appended, with their place, to their shard's spill file (small columns
   copied once by a take, large image bytes written straight from the decoded batch); the
   card's statistics are counted there, on whole batches (cheaper than on the gathered row
   groups, which are made of one-row slices).
3. Gather: shard by shard, the spill file is memory-mapped, its rows are put in order of place
   and handed to the parquet writer a row group at a time (shuffle.py), into the spill file of
   the shard before (written over); each shard is hashed as it is written (hasher threads
   follow the writer). Each byte is read twice and written twice; memory holds a few source
   batches while scattering, and one row group (plus the mapped shard, in the page cache) while
   gathering.
The same inputs and seed give byte-identical shards.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from docsynth.core.version import __version__
from docsynth.dataset.adapters import broken_rows, cap_and_split, piece_counts, quality_keep, to_cauldron
from docsynth.dataset.rowcheck import null_rows
from docsynth.dataset.cauldron import DATASET_SCHEMA, WRITE_OPTIONS
from docsynth.dataset.views import VIEWS
from docsynth.dataset.versions import begin, clear_leftovers, stage_version, switch
from docsynth.dataset.mixquality import conform, minimums, with_quality
from docsynth.mixing.decontam import check_sets, mixture_duplicates, mixture_hits, write_reports
from docsynth.mixing.report import MixSummary, SourceReport, mixture_card, source_reports
from docsynth.dataset.permute import Permutation
from docsynth.mixing.plan import SourcePlan, plan_mixture, wanted_units
from docsynth.core.readahead import interleave, prefetch
from docsynth.mixing.shuffle import SPILL_QUEUE_BYTES, OutputFull, Spill
from docsynth.dataset.sources import SourceError
from docsynth.dataset.stats import StatsAccumulator
from docsynth.config.section import config_hash
from docsynth.config.mixture import Mixture
from docsynth.core.files import FollowingSha256, atomic_write, atomic_write_text
from docsynth.core.lock import locked

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def plan_summary(m: Mixture, out: Path) -> MixSummary:
    """What `run_mix` would do (sources checked, rows per source, estimated bytes), writing nothing."""
    plans = plan_mixture(m)
    check_sets(m)
    total = sum(p.count for p in plans)
    return MixSummary(str(out), m.name, m.seed, requested=total, bytes=int(sum(p.count * p.row_bytes for p in plans)),
                      sources=list(source_reports(plans, total).values()))


def run_mix(m: Mixture, out: Path, progress: Progress | None = None, spill_queue: int = SPILL_QUEUE_BYTES,
            spill_dir: Path | None = None, spill_files: int | None = None) -> MixSummary:
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
    reports = source_reports(plans, total)
    with locked(out):  # the sources are checked: from here on the output is this process's
        found = mixture_hits(m, plans, out / ".hashes")
        dups = mixture_duplicates(m, plans, out / ".hashes")
        spill = (spill_dir / f".docsynth-spill-{os.getpid()}") if spill_dir else out / ".spill"
        shutil.rmtree(spill, ignore_errors=True)
        spill.mkdir(parents=True)
        data = begin(out)
        stats = StatsAccumulator()  # of every row spilled: the rows of the mixture
        runs = Spill(spill, n_shards, spill_queue, spill_files, expect=int(est_bytes / n_shards), observe=stats.add,
                     conform=conform)  # stats: on the rows spilled, repeats included
        try:
            read = _scatter(m, plans, total, n_shards, runs, reports, progress)
            shards, parts = _gather(m, runs, data, total, n_shards, est_bytes / total, progress)
        except BaseException:
            runs.close(abort=True)
            shutil.rmtree(spill, ignore_errors=True)
            clear_leftovers(out)
            raise
        runs.close()
        shutil.rmtree(spill, ignore_errors=True)
        version = stage_version(out, parts, config_hash(m, __version__))
        for s, name in zip(shards, version.names):
            s["path"] = name
        s = MixSummary(str(out), m.name, m.seed, rows=sum(x["rows"] for x in shards), requested=total,
                       bytes=sum(x["bytes"] for x in shards), bytes_read=read, shards=shards,
                       decontamination=found.found if found else {}, duplicates=dups.counts if dups else {})
        write_reports(out, found, dups)
        for r in reports.values():
            r.realised_share = r.realised / max(s.rows, 1)
            s.sources.append(r)
        manifest = {"docsynth_version": __version__, **s.to_dict(), "mixture": m.model_dump(mode="json")}
        manifest.pop("seconds")
        manifest.pop("out_dir")
        manifest.pop("bytes_read")
        # The card is the pointer readers follow (docsynth.dataset.versions); mixture.json and
        # mixture.yaml describe the version it names, so they follow it.
        switch(out, mixture_card(m, s, stats.result(), version.pattern), version)
        atomic_write_text(out / "mixture.json", json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False))
        atomic_write_text(out / "mixture.yaml", yaml.safe_dump(m.model_dump(mode="json"), sort_keys=False))
        s.seconds = round(time.perf_counter() - t0, 3)
        return s


READERS = 2  # sources read (decoded) side by side; each source by one thread, in order
HASHERS = 3  # shards hashed at once: a shard's hash lags its writing and may run on into the next two
READ_AHEAD = 2  # batches decoded and waiting for the scatter, at most (each up to Source.read's batch_bytes)


def _scatter(m: Mixture, plans: list[SourcePlan], total: int, n_shards: int, spill: Spill,
             reports: dict[str, SourceReport], progress: Progress | None) -> int:
    """Stream every source once and give each wanted row, with its place, to the spill. Sources
    are read READERS at a time (the order rows reach the spill does not matter: they are put in
    order of place when gathered)."""
    place = Permutation(total, m.seed)
    todo = {p.src.name: wanted_units(p, m.seed) for p in plans}
    work = sum(u.bytes for units in todo.values() for u in units)
    done = 0
    cursors = [_Cursor(p, p.perm(m.seed), reports[p.src.name]) for p in plans]
    # The biggest sources first: the readers then finish at about the same time.
    order = sorted(range(len(plans)), key=lambda i: -sum(u.bytes for u in todo[plans[i].src.name]))
    readers = [functools.partial(plans[i].src.read, todo[plans[i].src.name], plans[i].columns) for i in order]
    for k, (start, batch) in interleave(readers, READERS, depth=READ_AHEAD):
        c = cursors[order[k]]
        p = c.p
        rows, first, low = c.rows(start, batch)
        local, number = p.entries(c.perm, first, rows.num_rows)
        if len(local) and low:
            local, number = _drop_filtered(low, local, number, c.report)
        if len(local):
            local, number = _drop_broken(p, rows, local, number, first, c.report)
        if len(local):
            pos = place(number)
            spill.add(rows, local, pos, pos * n_shards // total)
            c.report.realised += len(local)
        if start + batch.num_rows >= c.unit.start + c.unit.rows:
            done += c.unit.bytes
            if progress:
                progress("read", done, work)
    spill.finish()
    pa.default_memory_pool().release_unused()  # what the readers freed (the allocator keeps it a while)
    return done


class _Cursor:
    """Where the reading of one source stands: its unit, and the number of its next piece (row
    after splitting turns)."""

    def __init__(self, p: SourcePlan, perm: Permutation, report: SourceReport) -> None:
        self.p, self.perm, self.report = p, perm, report
        self.starts = np.cumsum([0, *p.unit_pieces])
        self.unit_at = {u.start: i for i, u in enumerate(p.src.units)}
        self.unit = None
        self.piece = 0

    def rows(self, start: int, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int, dict[str, np.ndarray]]:
        """The batch in the Cauldron schema, turns capped or split, its first piece's number, and
        the pieces each quality filter leaves out (those of the rows it leaves out)."""
        if start in self.unit_at:  # a unit's first batch: pieces are counted from the unit's start
            self.unit = self.p.src.units[self.unit_at[start]]
            self.piece = int(self.starts[self.unit_at[start]])
        whole = with_quality(self.p.src.name, batch, to_cauldron(self.p.src, batch))
        low = quality_keep(self.p.src, batch)
        for why, rows in self.p.left_out.items():  # decontaminate, duplicate (docsynth.mixing.decontam)
            low[why] = np.isin(np.arange(start, start + batch.num_rows), rows)
        if low and self.p.src.cfg.turns.split is not None:
            counts = piece_counts(whole, self.p.src.cfg.turns)
            low = {k: np.repeat(v, counts) for k, v in low.items()}
        turns = self.p.src.cfg.turns
        rows = cap_and_split(whole, turns)
        rows = minimums(rows, again=turns.max is not None or turns.split is not None)  # of the turns it kept
        first, self.piece = self.piece, self.piece + rows.num_rows
        return rows, first, low


def _drop_filtered(low: dict[str, np.ndarray], local: np.ndarray, number: np.ndarray,
                   report: SourceReport) -> tuple[np.ndarray, np.ndarray]:
    """Leave out the wanted rows a quality filter leaves out, counted by the first filter that does."""
    keep = np.ones(len(local), dtype=bool)
    for why, rows in low.items():
        hit = keep & rows[local]
        if hit.any():
            report.filtered[why] = report.filtered.get(why, 0) + int(hit.sum())
            keep &= ~hit
    return local[keep], number[keep]


def _drop_broken(p: SourcePlan, rows: pa.RecordBatch, local: np.ndarray, number: np.ndarray, first: int,
                 report: SourceReport) -> tuple[np.ndarray, np.ndarray]:
    """Leave out the wanted rows a loader cannot use (docsynth.dataset.rowcheck): no images or turns
    list, or (unless image_check is none) a broken image."""
    mode, wanted = p.src.cfg.image_check, np.unique(local)
    wanted_set = set(wanted.tolist())
    nulls = {r: why for r, why in null_rows(rows).items() if r in wanted_set}
    bad_local = {**(broken_rows(rows, mode, wanted) if mode != "none" else {}), **nulls}
    if not bad_local:
        return local, number
    for r, why in sorted(bad_local.items()):
        where = f"row {first + r}" + (" (after splitting turns)" if p.src.cfg.turns.split else "")
        if p.src.cfg.broken_images == "fail":
            raise SourceError(f"source '{p.src.name}': {where} cannot be used: {why} (broken_images: fail; "
                              "set broken_images: skip to leave such rows out)")
        if len(report.broken_examples) < 10:
            report.broken_examples.append({"row": first + r, "reason": why})
            log.warning("source '%s': %s left out: %s", p.src.name, where, why)
    keep = ~np.isin(local, list(bad_local))
    report.broken_images += int((~keep).sum())
    return local[keep], number[keep]


def _gather(m: Mixture, spill: Spill, data: Path, total: int, n_shards: int, row_bytes: float,
            progress: Progress | None) -> tuple[list[dict], list[Path]]:
    """Write each shard from its spill file, rows in order of place, each hashed as it is written.
    Returns the shards and their part files."""
    step = max(1, int(m.row_group_bytes / max(row_bytes, 1)))
    shards, parts, hashes = [], [], []
    with ThreadPoolExecutor(HASHERS) as hasher:  # each shard hashed while it is written
        for shard in range(n_shards):
            rows = spill.rows.get(shard, 0)
            if not rows:  # every row of it was left out (broken images)
                continue
            part = data / f".part-{len(parts):05d}.parquet"
            room = spill.output_room(shard, -(-rows // step))
            try:
                digest = _write_shard(spill, shard, step, part, room, True, hasher, m.format)
            except OutputFull:  # (the room is twice the spill: not seen) once more, into a new file
                digest = _write_shard(spill, shard, step, part, room, False, hasher, m.format)
            spill.done(shard)
            pa.default_memory_pool().release_unused()
            parts.append(part)
            hashes.append(digest)
            shards.append({"rows": rows, "bytes": part.stat().st_size})
            if progress:
                progress("write", shard + 1, n_shards)
        for s, h in zip(shards, hashes):
            s["sha256"] = h.result()
    return shards, parts


def _write_shard(spill: Spill, shard: int, step: int, part: Path, room: int, reuse: bool,
                 hasher: ThreadPoolExecutor, fmt: str = "cauldron") -> FollowingSha256:
    """Write one shard to PART (see Spill.output), hashed on `hasher` as it is written, in the
    mixture's view (cauldron, or messages: docsynth.dataset.messages); returns the shard's hash."""
    view = VIEWS[fmt].table  # of the rows as spilled (DATASET_SCHEMA: images, texts, source, quality columns)
    schema = VIEWS[fmt].schema(DATASET_SCHEMA)
    digest = FollowingSha256(hasher)  # made before it starts: abandoned below whatever fails

    def write(tmp: Path) -> None:
        with spill.output(tmp, room, reuse) as out:
            digest.start(os.open(tmp, os.O_RDONLY))
            out.follow = digest.advance
            w = pq.ParquetWriter(out.file, schema, **WRITE_OPTIONS)
            try:
                for group in prefetch(spill.groups(shard, step), 1):
                    w.write_table(view(group), row_group_size=group.num_rows)
                    out.written()
                w.close()
            except BaseException:
                w.is_open = False  # a failed file is removed: pyarrow must not write its footer when it collects w
                raise
            del w  # the writer holds the sink: let go of it before the output is closed
        digest.finish(tmp.stat().st_size)

    try:
        atomic_write(part, write)
    except BaseException:
        digest.abandon()
        raise
    return digest
