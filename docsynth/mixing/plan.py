"""Planning a mixture: every source opened and checked, and the rows asked of each.

A source of n rows asked for c rows gives every row c // n times, plus the c % n rows a seeded
permutation of the source ranks first: without replacement until the source is exhausted, then
by repeat. Output rows are numbered source by source (`SourcePlan.offset`); the mixer gives each
number its place in the mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from docsynth.dataset.adapters import piece_counts, source_columns, to_cauldron
from docsynth.dataset.permute import Permutation
from docsynth.dataset.sources import Source, SourceError, Unit, open_source
from docsynth.core.errors import DocsynthError
from docsynth.config.mixture import Mixture


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
    left_out: dict[str, np.ndarray] = field(default_factory=dict)  # by reason: source rows to leave out (sorted)

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


def wanted_units(p: SourcePlan, seed: int) -> list[Unit]:
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
