"""What a mixture run reports: per source, the rows requested and realised; in all, the summary
the CLI prints (and --json gives) and the dataset card."""

from __future__ import annotations

from dataclasses import dataclass, field

from docsynth.core.summary import Summary
from docsynth.core.version import __version__
from docsynth.config.mixture import Mixture
from docsynth.mixing.decontam import dedup_markdown, mix_decontam_markdown
from docsynth.dataset.cauldron import QUALITY_COLUMNS, card_front, card_header
from docsynth.mixing.plan import SourcePlan
from docsynth.dataset.stats import Stats, stats_markdown
from docsynth.dataset.views import VIEWS


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
    filtered: dict[str, int] = field(default_factory=dict)  # rows left out by the source's min_rating / verified


@dataclass(slots=True)
class MixSummary(Summary):
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
    decontamination: dict = field(default_factory=dict)  # by source (docsynth.mixing.decontam)
    duplicates: dict = field(default_factory=dict)  # rows left out as near-duplicates, by source (dedup.images)

    @property
    def produced(self) -> bool:
        return self.rows > 0

    @property
    def rejects(self) -> int:
        return sum(s.broken_images for s in self.sources)


def source_reports(plans: list[SourcePlan], total: int) -> dict[str, SourceReport]:
    return {p.src.name: SourceReport(p.src.name, str(p.src.cfg.path), p.src.kind, p.rows, p.count,
                                     requested_share=p.count / total, epochs=p.count / p.rows) for p in plans}


def filtered_text(r: SourceReport) -> str:
    """What a source's min_rating / verified left out, by filter ("" for none)."""
    return ", ".join(f"{k}: {v:,}" for k, v in r.filtered.items())


def mixture_card(m: Mixture, s: MixSummary, stats: Stats, data_files: str) -> str:
    """README.md: the Hub's YAML header (naming the shards data_files matches), and the sources
    with requested and realised shares."""
    v = VIEWS[m.format]
    header = card_header(m.license, m.name, s.rows, s.bytes, ["mixture", *([v.name] if v.name != "cauldron" else [])],
                         data_files, v.card_features(QUALITY_COLUMNS))
    view = (f"in {v.says}; the quality columns (ratings per turn, `verified`, `checks`, `evidence`) are the "
            "sources' own, null where a source has none")
    lines = [card_front(header), f"# {m.name}", "",
             f"A training mixture of {len(s.sources)} sources {view}, shuffled with seed {m.seed} into {len(s.shards)} shards. Made with docsynth "
             f"{__version__}; `mixture.json` has the shards' sha256 and `mixture.yaml` the mixture file.", "",
             "| source | rows available | requested | realised | share | epochs | broken images left out "
             "| left out by quality filters |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in s.sources:
        lines.append(f"| {r.name} | {r.rows_available:,} | {r.requested:,} | {r.realised:,} | "
                     f"{100 * r.realised_share:.2f}% | {r.epochs:.2f} | {r.broken_images:,} | {filtered_text(r)} |")
    lines += ["", f"{s.rows:,} rows, {s.bytes / 1e6:,.1f} MB.", "", *mix_decontam_markdown(s.decontamination),
              *dedup_markdown(s.duplicates),
              stats_markdown(stats)]
    return "\n".join(lines)
