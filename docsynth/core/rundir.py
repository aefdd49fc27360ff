"""Every name in a run directory, in one place: stages, executors and readers ask `RunDir`.

    RUN/recipe.yaml               the resolved recipe                       ingest
    RUN/pages/                    its task store (docsynth.core.tasks)
    RUN/manifest.json             what made it: config key, versions, counts
    RUN/rejects.jsonl             documents and pages left out, with why
    RUN/duplicates.json           what ingest.dedup leaves out
    RUN/generate-recipe.yaml      the recipe generation ran with             generate
    RUN/candidates/               its task store
    RUN/generate-manifest.json, generate-rejects.jsonl
    RUN/verdicts/                 its task store                            verify
    RUN/verify-manifest.json
    RUN/filtered/                 its task store: each candidate shard filtered  write
    RUN/filter-rejects.jsonl      pairs the filters dropped, with why
    RUN/dataset/                  the dataset (docsynth.dataset.versions names what is inside)
    RUN/run.json                  what each stage of `docsynth run` did or reused
    RUN/.docsynth.lock            one writer at a time (docsynth.core.lock)

A stage that is not docsynth's keeps its files in a folder named after it (`RunDir.folder`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from docsynth.core.files import atomic_write_text


@dataclass(frozen=True, slots=True)
class StageFiles:
    """A stage's names in the run directory (None: it has no such file)."""

    folder: str | None = None  # its task store
    manifest: str | None = None
    rejects: str | None = None  # JSON lines, one record left out each
    recipe: str | None = None  # the recipe it ran with


FILES: dict[str, StageFiles] = {
    "ingest": StageFiles("pages", "manifest.json", "rejects.jsonl", "recipe.yaml"),
    "generate": StageFiles("candidates", "generate-manifest.json", "generate-rejects.jsonl", "generate-recipe.yaml"),
    "verify": StageFiles("verdicts", "verify-manifest.json"),
    "write": StageFiles("filtered", rejects="filter-rejects.jsonl"),
}
# The rejects files by the name users know them by (`docsynth run rejects --stage`): write's
# drops are the filters'.
REJECTS = {"ingest": "ingest", "generate": "generate", "filter": "write"}
REJECT_FILES = {name: FILES[stage].rejects for name, stage in REJECTS.items()}


@dataclass(frozen=True, slots=True)
class RunDir:
    root: Path

    def folder(self, stage: str) -> Path:
        """A stage's task store (another package's stage: a folder named after it)."""
        files = FILES.get(stage)
        return self.root / (files.folder if files and files.folder else stage)

    def manifest(self, stage: str) -> Path:
        return self.root / _named(stage, "manifest")

    def write_manifest(self, stage: str, content: dict) -> None:
        """A stage's manifest: what made its output (config key, versions, counts), as JSON."""
        _write_json(self.manifest(stage), content)

    def write_summary(self, content: dict) -> None:
        """run.json: what each stage of `docsynth run` did or reused."""
        _write_json(self.summary, content)

    def rejects(self, stage: str) -> Path:
        """A stage's rejects file, by stage name or by the name users know it by ("filter")."""
        return self.root / _named(REJECTS.get(stage, stage), "rejects")

    def recipe(self, stage: str) -> Path:
        return self.root / _named(stage, "recipe")

    @property
    def duplicates(self) -> Path:
        return self.root / "duplicates.json"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def summary(self) -> Path:
        return self.root / "run.json"


def _named(stage: str, kind: str) -> str:
    name = getattr(FILES.get(stage, StageFiles()), kind)
    if name is None:
        raise KeyError(f"stage {stage!r} has no {kind} file in a run directory")
    return name


def _write_json(path: Path, content: dict) -> None:
    atomic_write_text(path, json.dumps(content, indent=1, sort_keys=True) + "\n")
