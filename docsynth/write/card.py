"""The dataset card of a docsynth dataset: the YAML header the Hub reads and validates (with how
the data was made: machine-generated, from original documents), and a body that says how it was
made, by which model under which licence, how much of it was checked, and its limits."""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import metadata
from pathlib import Path

import yaml

from docsynth.core.version import __version__
from docsynth.config.recipe import Recipe, dump_recipe
from docsynth.dataset.cauldron import DATASET_CARD_FEATURES, card_front, card_header
from docsynth.decontam.index import decontam_markdown
from docsynth.dataset.stats import Stats, stats_markdown
from docsynth.write.verdicts import quality_markdown

# What the labelled pairs measured (bench/quality.py, bench/README.md 2026-12-06): the share of
# kept pairs that were right, by how they were made. Quoted in every card's limitations.
MEASURED = ("On docsynth's hand-labelled pairs (`bench/quality.py`), a 1.5B model's kept pairs were 28 % right "
            "unverified (model-first, gemma-3-270m) and 86 % right answer-first with the evidence, type and choice "
            "checks (the quickstart recipe); a larger model or a stronger verifier does better, and a dataset's own "
            "figure is only known by labelling a sample of it.")


def dataset_card(recipe: Recipe, s, templates: Counter, models: list[str], examples: list[dict],
                 stats: Stats, data_files: str) -> str:
    """README.md with the YAML header the Hub reads (naming the shards data_files matches), and
    how the data was made."""
    cfg = recipe.write
    header = card_header(cfg.license, cfg.pretty_name or recipe.name, s.samples_out, s.bytes, ["synthetic", "documents"],
                         data_files, DATASET_CARD_FEATURES)
    langs = [f.allowed for f in recipe.filters if f.name == "language"]
    header.update(provenance(recipe, langs[0] if langs else None))
    lines = [card_front(header),
             f"# {cfg.pretty_name or recipe.name}", "",
             f"Synthetic question/answer pairs about document pages, in the schema of The Cauldron and "
             f"Docmatix (`images`: the page images; `texts`: one user/assistant turn per pair, with its "
             f"`source`). Made with docsynth {__version__}.", "",
             "## How it was made", "",
             f"- Pages rendered at {recipe.ingest.dpi} dpi as {recipe.ingest.image_format}; text from the PDF's "
             f"text layer, tesseract OCR ({recipe.ingest.ocr.languages}) where a page had none "
             f"(ocr: {recipe.ingest.ocr.mode}).",
             f"- Model: {', '.join(f'`{m}`' for m in models) or '(none)'}; backend `{recipe.generate.backend}`; "
             f"strategy `{recipe.generate.strategy}`; up to {recipe.generate.max_pages_per_sample} pages per sample.",
             "- Prompt templates (samples kept): " + ", ".join(f"`{k}` {v}" for k, v in sorted(templates.items())),
             "- Filters, in order: " + ", ".join(f"`{f.name}`" for f in recipe.filters), "",
             "| | in | out |", "| --- | --- | --- |",
             f"| samples | {s.samples_in:,} | {s.samples_out:,} |", f"| QA pairs | {s.pairs_in:,} | {s.pairs_out:,} |", "",
             f"Samples left with no pair: {s.samples_dropped:,}."
             + (f" Near-duplicates left out at ingest (`ingest.dedup`, the first copy kept): "
                f"{s.duplicates['documents']:,} documents, {s.duplicates['pages']:,} pages." if s.duplicates else ""), "",
             *generator_markdown(models, recipe.generate.model), *quality_markdown(s.quality, s.dropped),
             *limitations_markdown(s.quality), *decontam_markdown(s.decontamination)]
    if examples:
        lines += ["## Examples", ""]
        for ex in examples:
            lines.append(f"`{Path(ex['source']).name}` pages {ex['pages'][0]}-{ex['pages'][-1]}:")
            lines += [f"- **Q:** {t['user']}  \n  **A:** {t['assistant']}" for t in ex["texts"][:4]]
            lines.append("")
    lines += [stats_markdown(stats), "## Recipe", "", "```yaml", dump_recipe(recipe).rstrip(), "```", ""]
    return "\n".join(lines)


def provenance(recipe: Recipe, languages: list[str] | None) -> dict:
    """The header's fields on how the data was made: the pairs are machine-generated; the pages
    are original documents, or rows of the Hub datasets the inputs name (hf://datasets/ORG/NAME)."""
    hub = sorted({m.group(1) for p in recipe.inputs.paths if (m := re.match(r"hf://datasets/([^/@]+/[^/@]+)", p))})
    out = {"annotations_creators": ["machine-generated"], "language_creators": ["machine-generated"],
           "source_datasets": [f"extended|{name}" for name in hub] or ["original"]}
    if languages:
        out["language"] = languages
        out["multilinguality"] = ["monolingual" if len(languages) == 1 else "multilingual"]
    return out


def generator_markdown(models: list[str], configured: str) -> list[str]:
    """The Generator section: each model that wrote pairs, and its licence where it can be read
    here (a local model folder's card, or the installed package's metadata)."""
    lines = ["## Generator", ""]
    for m in models or [configured]:
        lic = model_licence(m)
        lines.append(f"- `{m}`: licence {lic or 'not known here (see the model card)'}.")
    lines += ["", "The generator model's licence may restrict how its outputs are used; read it with the source "
              "documents' terms (this card's `license`).", ""]
    return lines


def model_licence(model: str) -> str | None:
    """A model's licence from its folder's README front matter, or a pypi: model package's metadata."""
    if model.startswith("pypi:"):
        name = re.split(r"[\[#]", model[len("pypi:"):])[0].rstrip("-_")
        for dist in (name, f"{name}1", name.replace("-part", "-part1")):
            try:
                meta = metadata.metadata(dist)
            except metadata.PackageNotFoundError:
                continue
            return meta.get("License-Expression") or meta.get("License") or None
        return None
    readme = Path(model) / "README.md"
    try:
        text = readme.read_text()
    except OSError:
        return None
    if text.startswith("---"):
        try:
            front = yaml.safe_load(text.split("---", 2)[1]) or {}
        except yaml.YAMLError:
            return None
        lic = front.get("license") if isinstance(front, dict) else None
        return json.dumps(lic) if isinstance(lic, list) else lic
    return None


def limitations_markdown(q: dict) -> list[str]:
    checked = q.get("verified") and q.get("kept_verified_share") is not None
    figure = (f"Of the kept pairs the verifier checked, {q['kept_verified_share']:.0%} agreed with their answers "
              "(a check's agreement, not a measured correctness). " if checked else
              "No verifier checked these pairs. ")
    return ["## Limitations", "",
            "- Questions and answers were written by a language model from the pages' text layer (or OCR): some "
            "are wrong, ambiguous or about text the image does not make legible. " + figure + MEASURED,
            "- Reading order, tables and OCR can garble a page's text; the pairs inherit it.",
            "- Pages are shown as rendered: they may hold personal or copyrighted content of the source documents.",
            ""]
