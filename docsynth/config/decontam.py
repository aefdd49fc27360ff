"""The `decontaminate:` section of recipes and mixture files: which evaluation sets the data must
not contain, and how a copy is recognised.

    decontaminate:
      action: drop                 # or flag: keep the sample, report the hit
      against:
        - {name: docvqa, path: /data/docvqa/test, adapter: {kind: qa, answer: answers}}
        - {name: chartqa, path: /data/the_cauldron, config: chartqa, split: test}
      images: {max_distance: 10}
      text: {ngram: 2, question: 0.7, question_answer: 0.8}
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from docsynth.config.adapters import Adapter
from docsynth.config.section import Section


class EvalSet(Section):
    """An evaluation set, read like a mixture's source (docsynth.dataset.sources)."""

    name: str
    path: Path = Field(description="a Cauldron-style dataset, a folder of parquet shards (or a glob), a "
                                   "save_to_disk dataset, or a Hub-style dataset folder with a card and configs")
    config: str | None = Field(None, description="the config of a Hub-style folder that has several")
    split: str = Field("test", description="the split to read")
    adapter: Adapter | None = Field(None, description=(
        "how to read a set that is not in the Cauldron schema, e.g. DocVQA's image/question/answers: "
        "{kind: qa, answer: answers}"))


class Action(str, Enum):
    drop = "drop"  # leave the sample (image hit) or the pair (text hit) out
    flag = "flag"  # keep it; the report and the card say it matched


class ImageMatch(Section):
    """Page images against evaluation images, by 64-bit perceptual hash (docsynth.hashing.phash)."""

    enabled: bool = True
    # Measured (docsynth.hashing.phash): re-encoding, resizing, 3 % crops, greyscale and another dpi
    # move the 64-bit hash at most 12 bits (99.9 % at most 10) and the 256-bit one at most 40;
    # distinct pages are 56 or more apart on the 256-bit hash.
    max_distance: int = Field(11, ge=0, le=15, description=(
        "candidates: the most bits two 64-bit hashes may differ in (0-15)"))
    confirm_distance: int = Field(48, ge=0, le=256, description=(
        "a candidate is the same image if the 256-bit hashes differ in at most this many bits"))


class TextMatch(Section):
    """Questions (and question + answer) against the evaluation set's, by normalised word n-grams
    (docsynth.hashing.ngrams). A one-word change in a 10-word question keeps 7 of its 9 word pairs
    (0.78) but only 5 of its 8 word triples (0.62): pairs tell an edited copy from a new question."""

    enabled: bool = True
    ngram: int = Field(2, ge=1, le=13, description="words per n-gram")
    question: float | None = Field(0.7, gt=0, le=1, description=(
        "a question sharing this share of its n-grams with an evaluation question is a hit; null: not checked"))
    min_question_words: int = Field(6, ge=1, description=(
        "shorter questions are not checked alone (any two sets share 'what is the date?'), only with their answer"))
    question_answer: float | None = Field(0.8, gt=0, le=1, description=(
        "question and answer together against an evaluation question and its answer; null: not checked"))


class DedupConfig(Section):
    """Near-duplicate documents and pages across the whole run, found after ingest: the first copy
    in input order is kept, and each later one is a reject naming it. Off by default: it changes
    which pages a run keeps (sample_pdfs/ holds a scanned copy of annual_report.pdf on purpose);
    turn it on for crawled collections (templates, re-uploads, versions)."""

    documents: bool = Field(False, description="drop documents whose text is nearly that of an earlier one (MinHash-LSH)")
    pages: bool = Field(False, description="drop pages whose image is nearly that of an earlier page (perceptual hash)")
    images: ImageMatch = Field(default_factory=ImageMatch)
    # Re-saved and re-ordered copies share every shingle but those across the page breaks moved
    # (0.9+); a copy with one of ten pages changed about 0.8, one of four about 0.6; distinct documents < 0.1.
    similarity: float = Field(0.7, gt=0, le=1, description="estimated Jaccard similarity of two copies, at least")
    bands: Literal[4, 8, 16, 32] = Field(16, description=(
        "LSH bands of the 64-entry signature: more find less similar candidates (16: half of pairs at 0.5)"))

    @property
    def enabled(self) -> bool:
        return self.documents or self.pages


class MixDedup(Section):
    """Rows whose image is nearly one of an earlier row's, across the mixture's sources (The
    Cauldron's sources overlap): the first in source order is kept."""

    images: bool = Field(False, description="leave out rows with a page image already in an earlier row")
    match: ImageMatch = Field(default_factory=ImageMatch)


class DecontamConfig(Section):
    """Checking data against evaluation sets. With no `against`, nothing is checked."""

    against: list[EvalSet] = Field(default_factory=list, description="the evaluation sets")
    action: Action = Field(Action.drop, description="drop: leave hits out; flag: keep them, report them")
    images: ImageMatch = Field(default_factory=ImageMatch)
    text: TextMatch = Field(default_factory=TextMatch)

    @field_validator("against")
    @classmethod
    def _unique_names(cls, v: list[EvalSet]) -> list[EvalSet]:
        names = [e.name for e in v]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"evaluation set name {', '.join(twice)} is used twice")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.against) and (self.images.enabled or self.text.enabled)

    def resolved(self, base: Path) -> DecontamConfig:
        """The same, with relative paths resolved against base (the recipe's or mixture's folder)."""
        def one(e: EvalSet) -> EvalSet:
            a = e.adapter
            if a is not None and a.image_root is not None:
                a = a.model_copy(update={"image_root": base / a.image_root})
            return e.model_copy(update={"path": base / e.path, "adapter": a})
        return self.model_copy(update={"against": [one(e) for e in self.against]})
