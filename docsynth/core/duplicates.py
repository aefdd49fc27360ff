"""RUN/duplicates.json: the near-duplicates ingest found (docsynth.ingest.dedup) and generate
leaves out. Here, in the core, because ingest writes it and generate reads it."""

from __future__ import annotations

import json
from pathlib import Path

from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text
from docsynth.core.rundir import RunDir

def write_duplicates(run_dir: Path, content: dict | None) -> None:
    """Write the file, or remove it (None: no dedup this run, so an earlier run's must not apply)."""
    path = RunDir(run_dir).duplicates
    if content is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write_text(path, json.dumps(content, sort_keys=True))


def read_duplicates(run_dir: Path) -> dict[str, dict]:
    """By ingest shard name: {"documents": [...], "pages": [[doc_id, page], ...]} to leave out ({} without dedup)."""
    try:
        return json.loads(RunDir(run_dir).duplicates.read_text())["by_shard"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DocsynthError(f"{RunDir(run_dir).duplicates} cannot be read ({e}): run docsynth ingest again") from None


def duplicate_counts(run_dir: Path) -> dict[str, int]:
    """Documents and pages ingest dropped as near-duplicates ({} without dedup)."""
    try:
        d = json.loads(RunDir(run_dir).duplicates.read_text())
        return {"documents": len(d["documents"]), "pages": len(d["pages"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
