"""The verify stage's verdicts as the write stage reads them, and the Quality they add up to.

Verdicts are used when the recipe enables verification (then every candidate shard must have
fresh ones), or when fresh ones exist for every candidate shard (`docsynth verify RUN` was
run). A verdict shard is fresh when its marker names the sha256 of the candidate shard it
judged: candidates regenerated since make it stale, never silently applied.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.records import JUDGED_AXES, RATED_AXES
from docsynth.core.tasks import Finished, TaskStore
from docsynth.write.filters import Pair

_COLUMNS = ["sample_id", "verified", "how", "reasons", "model", *RATED_AXES, "checks"]


class VerdictSource:
    def __init__(self, run_dir: Path, candidates: list[Finished], required: bool) -> None:
        self.store = TaskStore.of(run_dir, "verify")
        found = {f.index: f for f in self.store.finished(verify=True)} if self.store.root.is_dir() else {}
        fresh = {c.index: found[c.index] for c in candidates
                 if c.index in found and found[c.index].info.get("candidates_sha256") == c.info.get("sha256")}
        missing = [c for c in candidates if c.index not in fresh]
        if required and missing:
            raise DocsynthError(f"verify.enabled, but {len(missing)} candidate shard(s) have no verdicts for their "
                                f"current content (first: {missing[0].shard}): run docsynth verify "
                                f"{run_dir} (or docsynth run) first")
        self.used = bool(candidates) and not missing
        self.fresh = fresh if self.used else {}

    def keys(self) -> list:
        """What the dataset depends on of the verdicts (for the write key)."""
        return [[f.shard.name, f.info.get("sha256")] for _, f in sorted(self.fresh.items())]

    def of(self, index: int) -> Finished | None:
        """The fresh verdict shard of candidate shard `index` (None when verdicts are unused)."""
        return self.fresh.get(index) if self.used else None


def read_verdicts(shard: Path | str | None) -> dict[str, dict]:
    """sample_id -> its verdict row, from a verdict shard ({} for none)."""
    if not shard:
        return {}
    rows = {}
    f = pq.ParquetFile(shard)
    columns = [c for c in _COLUMNS if c in f.schema_arrow.names]  # a shard from before the visual axes lacks them
    for batch in f.iter_batches(batch_size=512, columns=columns):
        for r in batch.to_pylist():
            rows[r["sample_id"]] = r
    return rows


def pairs_of(c: dict, v: dict | None) -> list[Pair]:
    """A candidate's pairs, with their verdicts, checks and ratings where the verify stage gave
    them, and their evidence where they were made answer-first."""
    n = len(c["questions"])
    evidence = c.get("evidence") or [None] * n
    checks = (v.get("checks") if v else None) or [None] * n
    return [Pair(q, a, c["text"], *((v["verified"][i], v["reasons"][i]) if v else (None, "")),
                 {ax: (v.get(ax) or [None] * n)[i] for ax in RATED_AXES} if v else {}, c["template"],
                 checks[i], evidence[i])
            for i, (q, a) in enumerate(zip(c["questions"], c["answers"]))]


@dataclass(slots=True)
class Quality:
    """Round-trip verification over the pairs written in, and over those kept."""

    used: bool = False
    model: str = ""
    checked: int = 0
    agreed: int = 0
    disagreed: dict[str, int] = field(default_factory=dict)
    kept: int = 0
    kept_checked: int = 0
    kept_agreed: int = 0
    rated: int = 0  # pairs the judge rated
    checks: dict[str, dict[str, int]] = field(default_factory=dict)  # per check (verify.checks): checked, agreed
    ratings: dict[str, dict[str, int]] = field(default_factory=dict)  # of the kept pairs: axis -> score|"unrated" -> n

    def add(self, verdict: dict | None, kept: list[bool]) -> None:
        """One sample: its verdict row and which of its pairs were kept."""
        for ax in RATED_AXES:
            scores = (verdict or {}).get(ax) or [None] * len(kept)
            if ax not in JUDGED_AXES and ax not in self.ratings and all(r is None for r in scores):
                continue  # the visual axes appear once a judge that sees the images rated something
            hist = Counter(self.ratings.get(ax, {}))
            hist.update(str(r) if r is not None else "unrated" for r, k in zip(scores, kept) if k)
            self.ratings[ax] = dict(sorted(hist.items()))
        if verdict is None:
            self.kept += sum(kept)
            return
        self.rated += sum(r is not None for r in verdict[JUDGED_AXES[0]])
        self.model = self.model or verdict["model"]
        for c in verdict.get("checks") or []:
            for name, ok in (c or {}).items():
                if ok is not None:
                    t = self.checks.setdefault(name, {"checked": 0, "agreed": 0})
                    t["checked"] += 1
                    t["agreed"] += int(ok)
        disagreed = Counter(self.disagreed)
        for ok, how, k in zip(verdict["verified"], verdict["how"], kept):
            self.kept += k
            if ok is None:
                continue
            self.checked += 1
            self.agreed += ok
            self.kept_checked += k
            self.kept_agreed += int(k and ok)
            if not ok:
                disagreed[how] += 1
        self.disagreed = dict(sorted(disagreed.items()))

    def merge(self, raw: dict) -> None:
        """Add another Quality's counts (its `raw()`): a task's, to the dataset's."""
        self.used = self.used or raw["used"]
        self.model = self.model or raw["model"]
        for k in ("checked", "agreed", "kept", "kept_checked", "kept_agreed", "rated"):
            setattr(self, k, getattr(self, k) + raw[k])
        self.disagreed = dict(sorted((Counter(self.disagreed) + Counter(raw["disagreed"])).items()))
        for name, t in raw["checks"].items():
            mine = self.checks.setdefault(name, {"checked": 0, "agreed": 0})
            mine["checked"] += t["checked"]
            mine["agreed"] += t["agreed"]
        for ax, hist in raw["ratings"].items():  # axes in the order they were first met, as add() keeps them
            self.ratings[ax] = dict(sorted((Counter(self.ratings.get(ax, {})) + Counter(hist)).items()))

    def raw(self) -> dict:
        """Its counts as they are (what merge() takes)."""
        return {"used": self.used, "model": self.model, "checked": self.checked, "agreed": self.agreed,
                "disagreed": self.disagreed, "kept": self.kept, "kept_checked": self.kept_checked,
                "kept_agreed": self.kept_agreed, "rated": self.rated, "checks": self.checks, "ratings": self.ratings}

    def to_dict(self) -> dict:
        share = round(self.agreed / self.checked, 3) if self.checked else None
        kept_share = round(self.kept_agreed / self.kept_checked, 3) if self.kept_checked else None
        return {"verified": self.used, "model": self.model, "checked": self.checked, "agreed": self.agreed,
                "verified_share": share, "disagreed": self.disagreed, "kept": self.kept,
                "kept_checked": self.kept_checked, "kept_agreed": self.kept_agreed, "kept_verified_share": kept_share,
                "rated": self.rated, "ratings": self.ratings, "checks": dict(sorted(self.checks.items()))}


CHECK_WORDS = {  # the card's words for verify.checks
    "round_trip": "round trip: each question answered from the page text alone, the answers compared",
    "choice": "choice: each question answered by picking among the page's candidate answers of its kind",
    "vote": "vote: sampled answers, the majority deciding",
    "evidence": "evidence: an answer-first pair's span at its recorded place on the page",
    "type": "type: the answer has the type its question asks for",
}

CORRECTNESS_STORED = (
    "How correctness is stored, per turn: `verified` (list of bool; null where not checked) is the checks' "
    "verdict, `checks` each check's own, `evidence` an answer-first pair's span (page, offsets, kind, key, text), and `correctness_ratings` / `correctness_min` the judge's 1-5 score; `relevance_*` and "
    "`formatting_*` are the judge's other scores, in FineVision's names (nanoVLM's `*_min_rating` options read "
    "them); `visual_dependency_*` (does the question need the image?) and `image_correspondence_*` (does the "
    "answer match the image?) are rated by a judge that sees the page images (`verify.vision`), else null. "
    "`datasets` reads them as `List(Value('int64'))`, `Value('int64')` and `List(Value('bool'))`.")


def quality_markdown(q: dict, dropped: dict[str, int]) -> list[str]:
    """The card's Quality section (docsynth stats prints the same from the dataset marker)."""
    lines = ["## Quality", ""]
    if not q.get("verified"):
        lines += ["Not verified: no verify stage ran on these pairs (recipe `verify.enabled`). Their filters are "
                  "lexical: an answer's words being on the page does not make it the right answer.", ""]
    else:
        share = q["verified_share"]
        checks = q.get("checks") or {}
        lines += [f"Verification by `{q['model']}` ({', '.join(CHECK_WORDS.get(c, c) for c in checks) or 'round trip'}): "
                  f"of {q['checked']:,} pairs checked, {q['agreed']:,} agreed ({share:.0%})." if share is not None else
                  "Verification ran, but no pair was checked.",
                  *([("Per check: " + ", ".join(f"{c} {t['agreed']:,} of {t['checked']:,} agreed"
                                                for c, t in checks.items()) + ".")] if checks else []),
                  f"Kept: {q['kept']:,} pairs, of which {q['kept_checked']:,} checked and {q['kept_agreed']:,} agreed"
                  + (f" ({q['kept_verified_share']:.0%})." if q["kept_verified_share"] is not None else "."),
                  "Disagreements by rule: " + (", ".join(f"{k} {v:,}" for k, v in q["disagreed"].items()) or "none")
                  + ".", ""]
    if q.get("rated"):
        lines += [f"Judge ratings (1-5, a short reason written first), of the {q['kept']:,} kept pairs:", "",
                  "| axis | " + " | ".join(["1", "2", "3", "4", "5", "unrated"]) + " |", "| --- " * 7 + "|",
                  *(f"| {ax} | " + " | ".join(f"{hist.get(k, 0):,}" for k in ["1", "2", "3", "4", "5", "unrated"])
                    + " |" for ax, hist in q["ratings"].items()), ""]
    lines += [CORRECTNESS_STORED, ""]
    lines += ["Pairs dropped, by reason: " + (", ".join(f"{k} {v:,}" for k, v in dropped.items()) or "none") + ".", ""]
    return lines
