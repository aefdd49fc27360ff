"""Mixture files: which Cauldron-style sources a training mixture takes, and how much of each.

    name: docs-mix
    seed: 0
    total: 200000              # rows; needed when a source has a weight
    shard_bytes: 256MB
    sources:
      - {name: docmatix, path: runs/docs/dataset, weight: 3}
      - {name: chartqa, path: /data/the_cauldron, config: chartqa, repeat: 1.5}
      - name: vqa
        path: /data/vqa
        max_samples: 50000
        adapter: {kind: qa, image: image, question: question, answer: answers}
        turns: {max: 8, split: 4}

Validated by pydantic like recipes: unknown keys are errors naming the key path.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ByteSize, Field, field_validator, model_validator

from docsynth.config.section import Section, parse_config, read_yaml
from docsynth.config.adapters import Adapter, LlavaAdapter, MessagesAdapter, QAAdapter  # noqa: F401 (sources use them)
from docsynth.config.decontam import DecontamConfig, MixDedup
from docsynth.config.filters import RatingAxis
from docsynth.core.remote import is_remote


class TurnsConfig(Section):
    """QA turns per sample: training code packs samples by length, so long ones can be cut."""

    max: int | None = Field(None, ge=1, description="keep the first N turns of a sample, drop the rest")
    split: int | None = Field(None, ge=1, description="split a sample into several of at most N turns (same images)")


class BrokenImages(str, Enum):
    skip = "skip"  # leave the row out, count it, say so
    fail = "fail"  # stop before anything is written


class ImageCheck(str, Enum):
    none = "none"      # trust the bytes
    header = "header"  # the format's header parses and the data is not truncated (cheap)
    decode = "decode"  # decode every image in full (slow, certain)


class SourceConfig(Section):
    """One source of the mixture, and how many of its rows to take."""

    name: str
    path: Path | str = Field(description=(
        "a docsynth dataset, a folder of parquet shards (or a glob), a save_to_disk dataset, or a Hub-style "
        "dataset folder with a card and configs; or one of these (parquet) at s3://, gs://, hf://datasets/... or "
        "https:// URLs"))
    config: str | None = Field(None, description="the config of a Hub-style folder that has several")
    split: str = "train"
    weight: float | None = Field(None, gt=0, description="relative share of the rows left by repeat/max_samples sources")
    repeat: float | None = Field(None, gt=0, description="epochs of this source; 1.5 = every row once, half twice")
    max_samples: int | None = Field(None, ge=1, description="this many rows, each at most once")
    adapter: Adapter | None = Field(None, description="how to read a source that is not in the Cauldron schema")

    @field_validator("path", mode="before")
    @classmethod
    def _path_or_url(cls, v):
        """A URL stays a string (a Path would fold its '//'); anything else is a local path."""
        return v if isinstance(v, str) and is_remote(v) else Path(v)
    turns: TurnsConfig = Field(default_factory=TurnsConfig)
    broken_images: BrokenImages = BrokenImages.skip
    image_check: ImageCheck = ImageCheck.header
    min_rating: dict[RatingAxis, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict, description=(
        "leave out rows with a turn rated below the floor, e.g. {relevance: 3} (the source's AXIS_ratings column, "
        "as docsynth and FineVision write it; a null rating passes, as in nanoVLM)"))
    verified: bool = Field(False, description=(
        "leave out rows with a turn whose round trip disagreed (the source's `verified` column, as docsynth writes it)"))
    decontaminate: DecontamConfig | None = Field(None, description=(
        "this source's own check against evaluation sets, in place of the mixture's ({against: []}: none)"))

    @model_validator(mode="after")
    def _one_amount(self):
        given = [k for k in ("weight", "repeat", "max_samples") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"source '{self.name}': give exactly one of weight, repeat, max_samples"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class Mixture(Section):
    """A training mixture of Cauldron-style sources."""

    name: str = "mixture"
    seed: int = 0
    total: int | None = Field(None, ge=1, description="rows in the mixture; needed when a source has a weight")
    shard_bytes: ByteSize = Field(ByteSize(256_000_000), ge=1_000_000, description="target shard size (e.g. 256MB)")
    shard_rows: int | None = Field(None, ge=1, description="rows per shard at most (default: by shard_bytes only)")
    row_group_bytes: ByteSize = Field(ByteSize(32_000_000), ge=100_000, description=(
        "target parquet row group size: the unit a loader reads and a resume re-reads"))
    license: str = Field("other", description="the card's license (the sources' terms decide it)")
    format: Literal["cauldron", "messages", "finevision"] = Field("cauldron", description=(
        "the shards' view: cauldron (images, texts, source; what MixtureDataset reads), messages (images and chat "
        "messages, what TRL's VLM SFT takes) or finevision (images, texts of user/assistant, source: "
        "concatenates with FineVision); each with the quality columns; docsynth export writes the same views"))
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig, description=(
        "check every source against evaluation sets (a source's own section replaces it)"))
    dedup: MixDedup = Field(default_factory=MixDedup)
    sources: list[SourceConfig] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, v: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for s in v:
            if s.name in seen:
                raise ValueError(f"source name '{s.name}' is used twice")
            seen.add(s.name)
        return v

    @model_validator(mode="after")
    def _total_for_weights(self):
        weighted = [s.name for s in self.sources if s.weight is not None]
        if weighted and self.total is None:
            raise ValueError(f"sources {', '.join(weighted)} have a weight, so the mixture needs a total")
        return self


def load_mixture(path: str | Path) -> tuple[Mixture, Path]:
    """Load and validate a mixture file; source paths are resolved against its folder."""
    m = parse_config(Mixture, read_yaml(path, "mixture file"), str(path), "mixture file")
    base = Path(path).resolve().parent
    for s in m.sources:
        if isinstance(s.path, Path) and not s.path.is_absolute():
            s.path = base / s.path
        if s.adapter is not None and s.adapter.image_root is not None and not s.adapter.image_root.is_absolute():
            s.adapter.image_root = base / s.adapter.image_root
        if s.decontaminate is not None:
            s.decontaminate = s.decontaminate.resolved(base)
    m.decontaminate = m.decontaminate.resolved(base)
    return m, base
