"""What a command or a stage did, as each of them reports it: the JSON summary (`to_dict`), what
`run.json` and the card read, and whether anything was made (`produced`: the CLI exits 3 when
not). Each adds its own counts to one of these two."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class Summary:
    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def produced(self) -> bool:
        return True


@dataclass(slots=True, kw_only=True)
class StageSummary(Summary):
    """A stage over tasks: its output folder, its tasks (those an earlier run had finished are
    skipped) and its wall time."""

    out_dir: str = ""
    tasks: int = 0
    tasks_skipped: int = 0
    seconds: float = 0.0
