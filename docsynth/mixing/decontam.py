"""A mixture's `decontaminate:` sections, applied by mix.

Each source is checked against the mixture's section, or its own where it has one. The mixer
works on rows: a row with any hit (a page image, or a turn's question) is left out whole under
action drop, counted in the source's `filtered` as "decontaminate", and kept under flag. Every
hit goes to OUT/decontamination.jsonl (sample: SOURCE:ROW). The sources' hashes are kept in
OUT/.hashes by file, so a rerun, or a new evaluation set, hashes none of them again. Every
evaluation set of every section is opened, and its schema checked, before any hashing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docsynth.config.section import config_hash
from docsynth.config.decontam import DecontamConfig, TextMatch
from docsynth.core.files import atomic_write_text
from docsynth.config.mixture import Mixture
from docsynth.hashing.hamming import HammingIndex
from docsynth.hashing.phash import fine_distances
from docsynth.decontam.index import REPORT, DecontamSummary, EvalIndex, hash_source, open_eval_set, report_lines
from docsynth.decontam.hashes import HashCache
from docsynth.mixing.plan import SourcePlan

DUPLICATES_REPORT = "duplicates.jsonl"


@dataclass(slots=True)
class MixDecontam:
    """By source: the rows it leaves out (drop) and what was found."""

    found: dict[str, dict] = field(default_factory=dict)  # DecontamSummary.to_dict()
    lines: list[str] = field(default_factory=list)


def section(m: Mixture, name: str) -> DecontamConfig:
    s = next(s for s in m.sources if s.name == name)
    return s.decontaminate if s.decontaminate is not None else m.decontaminate


def check_sets(m: Mixture) -> None:
    """Open every evaluation set of the mixture: DecontamError names the first that cannot be used."""
    for c in [m.decontaminate, *(s.decontaminate for s in m.sources if s.decontaminate is not None)]:
        for e in c.against:
            open_eval_set(e)


def mixture_hits(m: Mixture, plans: list[SourcePlan], cache_dir: Path,
                 progress: Callable[[str], None] | None = None) -> MixDecontam | None:
    """Hash and check every source that has a section; None when none has."""
    cfgs = {p.src.name: section(m, p.src.name) for p in plans}
    cfgs = {k: c for k, c in cfgs.items() if c.enabled}
    if not cfgs:
        return None
    check_sets(m)  # every set opened and checked before any is hashed
    indexes: dict[str, EvalIndex] = {}
    for c in cfgs.values():
        indexes.setdefault(config_hash(c), EvalIndex(c, cache_dir / "eval", progress))
    found = MixDecontam()
    for p in plans:
        c = cfgs.get(p.src.name)
        if c is None:
            continue
        index = indexes[config_hash(c)]
        summary = DecontamSummary.start(index)
        rows: set[int] = set()
        for _, rh, first in hash_source(p.src, p.columns, HashCache(cache_dir / "data", c.text.ngram),
                                        c.images.enabled, progress):
            hits = index.check(rh)
            summary.add(hits)
            found.lines += report_lines(hits, lambda r, first=first, name=p.src.name: f"{name}:{first + r}")
            rows |= {first + h.row for h in hits}
        if c.action == "drop":
            p.left_out["decontaminate"] = np.array(sorted(rows), dtype=np.int64)
            summary.rows_dropped = len(rows)
        summary.report = REPORT
        found.found[p.src.name] = {**summary.to_dict(), "rows_with_hits": len(rows)}
    return found


@dataclass(slots=True)
class MixDuplicates:
    counts: dict[str, int] = field(default_factory=dict)  # rows left out, by source
    lines: list[str] = field(default_factory=list)  # OUT/duplicates.jsonl


def mixture_duplicates(m: Mixture, plans: list[SourcePlan], cache_dir: Path) -> MixDuplicates | None:
    """With dedup.images: every row whose page image is nearly one of an earlier row's, in the
    mixture's source order then row order (the first copy is kept), left out and listed."""
    if not m.dedup.images:
        return None
    match = m.dedup.match
    where, coarse, fine = [], [], []
    for k, p in enumerate(plans):
        # the same cache as the decontaminate check's (its default n-gram size)
        for _, rh, first in hash_source(p.src, p.columns, HashCache(cache_dir / "data", TextMatch().ngram), True):
            where += [(k, first + int(r)) for r in rh.img_row]
            coarse.append(rh.img)
            fine.append(rh.fine)
    if not where:
        return MixDuplicates()
    coarse_all, fine_all = np.concatenate(coarse), np.concatenate(fine)
    qi, si, _ = HammingIndex.build(coarse_all).near(coarse_all, match.max_distance)
    order = np.array([k * (1 << 40) + r for k, r in where], dtype=np.int64)  # source, then row
    earlier = order[si] < order[qi]  # another image of the same row is no earlier copy
    qi, si = qi[earlier], si[earlier]
    d = fine_distances(fine_all[qi], fine_all[si])
    sure = d <= match.confirm_distance
    first_copy: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
    for q, s, dist in zip(qi[sure].tolist(), si[sure].tolist(), d[sure].tolist()):
        row = where[q]
        if row not in first_copy or where[s] < first_copy[row][0]:
            first_copy[row] = (where[s], dist)
    out = MixDuplicates()
    for k, p in enumerate(plans):
        rows = sorted(r for (kk, r) in first_copy if kk == k)
        if rows:
            p.left_out["duplicate"] = np.array(rows, dtype=np.int64)
            out.counts[p.src.name] = len(rows)
    name = lambda w: f"{plans[w[0]].src.name}:{w[1]}"  # noqa: E731
    out.lines = [json.dumps({"sample": name(row), "of": name(of), "distance": dist}, sort_keys=True) + "\n"
                 for row, (of, dist) in sorted(first_copy.items())]
    return out


def write_reports(out: Path, found: MixDecontam | None, dups: MixDuplicates | None) -> None:
    """OUT/decontamination.jsonl and OUT/duplicates.jsonl, or neither where not asked for (an
    earlier mix's are removed)."""
    for name, what in ((REPORT, found), (DUPLICATES_REPORT, dups)):
        if what is None:
            (out / name).unlink(missing_ok=True)
        else:
            atomic_write_text(out / name, "".join(what.lines))


def dedup_markdown(counts: dict[str, int]) -> list[str]:
    if not counts:
        return []
    return ["## Near-duplicates", "", "Rows whose page image is nearly one of an earlier row's (the mixture's "
            f"`dedup.images`; the first copy is kept; each with the row it copies in `{DUPLICATES_REPORT}`): "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items()) + ".", ""]


def mix_decontam_markdown(found: dict[str, dict]) -> list[str]:
    """The mixture card's Decontamination section: per source, the sets and the hits."""
    if not found:
        return []
    lines = ["## Decontamination", "", f"Every hit is listed in `{REPORT}`; a row with a hit is left out under "
             "`action: drop` (counted in the source's filtered rows) and kept under `flag`.", "",
             "| source | evaluation sets | action | rows with a hit | image hits | question hits | question + answer hits |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, d in found.items():
        total = {k: sum(h.get(k, 0) for h in d["hits"].values()) for k in ("image", "question", "question_answer")}
        sets = ", ".join(f"{s['name']} ({s['rows']:,} rows)" for s in d["sets"])
        lines.append(f"| {name} | {sets} | {d['action']} | {d['rows_with_hits']:,} | "
                     f"{total['image']:,} | {total['question']:,} | {total['question_answer']:,} |")
    return lines + [""]
