"""One progress display for the stages an executor drives: documents for ingest, pages and
tokens for generate and verify, samples and pairs kept for write (on one display, moving
together in `docsynth run`)."""

from __future__ import annotations

from docsynth.cli import common
from docsynth.core.stage import Progress


STAGES = ("ingest", "generate", "verify", "write")  # another stage (a plugin's) has no bar


class StageBars(Progress):
    def __init__(self, bar) -> None:
        self.bar = bar
        self.ids: dict[str, int] = {}
        self.samples = 0

    def status(self, stage: str, message: str) -> None:
        common.err.print(f"[dim]{message}[/dim]")

    def _id(self, stage: str):
        if stage not in self.ids:
            if stage == "ingest":
                self.ids[stage] = self.bar.add_task("ingest", total=0, pages=0, unit="docs", rate="pages",
                                                    rate_unit="pages")
            elif stage == "write":
                self.ids[stage] = self.bar.add_task("write", total=0, pairs=0, unit="samples", rate="pairs",
                                                    rate_unit="pairs kept")
            elif stage == "verify":
                self.ids[stage] = self.bar.add_task("verify", total=0, tokens=0, unit="samples", rate="tokens",
                                                    rate_unit="tok")
            else:
                self.ids[stage] = self.bar.add_task("generate", total=0, tokens=0, unit="pages", rate="tokens",
                                                    rate_unit="tok")
        return self.ids[stage]

    @staticmethod
    def _units(stage: str, task) -> int:
        return task.parts if stage == "ingest" else task.samples if stage in ("verify", "write") else task.pages

    def planned(self, stage: str, tasks: list) -> None:
        if stage not in STAGES:
            return
        t = common.task_of(self.bar, self._id(stage))
        self.bar.update(t.id, total=(t.total or 0) + sum(self._units(stage, x) for x in tasks))

    def advanced(self, stage: str, task, info: dict, reused: bool) -> None:
        if stage not in STAGES:
            return
        t = common.task_of(self.bar, self._id(stage))
        if stage == "write":
            self.bar.update(t.id, advance=task.samples, pairs=t.fields["pairs"] + info["pairs_out"])
            common.stop_when_done(self.bar, t.id)
            return
        if stage == "verify":
            self.bar.update(t.id, advance=task.samples,
                            tokens=t.fields["tokens"] + (0 if reused else info["output_tokens"]))
            common.stop_when_done(self.bar, t.id)
            return
        if stage == "ingest":
            self.bar.update(t.id, advance=task.parts, pages=t.fields["pages"] + info["pages"])
            common.stop_when_done(self.bar, t.id)
            return
        self.samples += info["samples"]
        self.bar.update(t.id, advance=task.pages, tokens=t.fields["tokens"] + (0 if reused else info["output_tokens"]),
                        description=f"generate ({self.samples:,} samples)")
