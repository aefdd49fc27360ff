"""How `docsynth push` publishes a dataset: its options as a validated model, so their defaults
live here alone and a bad value from the command line is a usage error, as in a recipe."""

from __future__ import annotations

from pydantic import ByteSize, Field

from docsynth.config.section import Section


class PushOptions(Section):
    private: bool = Field(False, description="create the repo private (an existing repo keeps its visibility)")
    revision: str = Field("main", min_length=1, description="the branch to push to (created from main if missing)")
    config: str | None = Field(None, min_length=1, description=(
        "push as this config of the repo (files under NAME/), the way The Cauldron holds one config per source"))
    commit_files: int = Field(50, ge=1, description="files per commit at most")
    commit_bytes: ByteSize = Field(ByteSize(4_000_000_000), ge=1, description=(
        "bytes per commit at most (e.g. 4GB; a shard larger than this goes in a commit of its own): "
        "a commit is retried whole, so it is kept to a size a retry can afford"))
