"""Tasks, atomic shard files and completion markers: the resume mechanism of every stage.

A stage directory holds, per task, `task-NNNNN.parquet` and then
`task-NNNNN.done.json`. A shard is written to a temp file and renamed; the
marker is written (also atomically) only after the rename, and records the
task's key (a hash of its inputs and config), the shard's row count and its
sha256. A task counts as done only when its marker holds the same key and the
shard's bytes have that sha256, so a crash at any point leaves either a trusted
shard or one that is redone, never a half-written file that a later run trusts;
bytes flipped inside a shard whose footer still reads back are caught too.
Hashing runs at about 1.8 GB/s here (SHA-NI): under 1% of the time that made the
shard. Files are not fsynced (that costs workers ~8% here): a kill -9 cannot
tear a renamed file, and a file torn by power loss fails the hash.

A store whose run directory is on object storage (docsynth.core.objstore) works in its local
copy and also commits each task there, shard first and marker last; a task it does not have
locally is looked for there before it is redone (a rerun on another machine, a Ray worker on
another node).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text, file_sha256
from docsynth.core.objstore import Mirror, remote_of
from docsynth.core.rundir import RunDir


@dataclass(slots=True)
class Task:
    """A deterministic unit of work of one stage: its index (which names its shard) and a key that
    identifies its content (inputs and config). Each stage's task type adds what it works on."""

    index: int
    key: str

    @property
    def name(self) -> str:
        return f"task-{self.index:05d}"


@dataclass(slots=True, frozen=True)
class Finished:
    """A task that has a marker in a store: its index, its shard and the marker's content."""

    index: int
    shard: Path
    info: dict


_MARKER = ".done.json"


CRUMB = "current.json"  # a worker's breadcrumb: the page it is on (docsynth.ingest.watch)


@dataclass(slots=True)
class TaskStore:
    """The per-task shards and markers of one stage directory. This is the only code that knows
    how they are named; stages, executors and readers ask it."""

    root: Path
    suffix: str = ".parquet"
    remote: str | None = None  # the folder's URL when the run directory is on object storage
    _pulled: bool = field(default=False, repr=False)

    @classmethod
    def of(cls, run_dir: Path, stage: str) -> TaskStore:
        """The store of a stage ("ingest", "generate") in a run directory."""
        root = RunDir(run_dir).folder(stage)
        return cls(root, remote=remote_of(root))

    def __getstate__(self):  # slots and a lazily made client: pickled as the fields that say where
        return {"root": self.root, "suffix": self.suffix, "remote": self.remote}

    def __setstate__(self, state) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._pulled = False

    @property
    def mirror(self) -> Mirror | None:
        return Mirror(self.remote, self.root, self.suffix) if self.remote else None

    def pull(self, name: str | None = None) -> None:
        """Bring the object store's committed tasks (or one) into the local folder (a remote run)."""
        if self.remote and (name is not None or not self._pulled):
            self.mirror.pull(name)
            self._pulled = self._pulled or name is None

    def prepare(self) -> None:
        """Make the folder, and remove temporary files a killed run left (never trusted); for the
        stage that writes here, not for readers. A remote run's committed tasks are brought here."""
        self.root.mkdir(parents=True, exist_ok=True)
        for tmp in self.root.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        self.pull()

    def tidy(self) -> None:
        """Remove what stopped workers leave (temporary shards, the page breadcrumbs of
        docsynth.ingest.watch), when a run is interrupted; finished tasks and poison lists stay."""
        for f in [*self.root.glob(".*.tmp"), *self.root.glob(f"task-*.{CRUMB}")]:
            f.unlink(missing_ok=True)

    def shard(self, task: Task) -> Path:
        return self.root / f"{task.name}{self.suffix}"

    def marker(self, task: Task) -> Path:
        return self.root / f"{task.name}{_MARKER}"

    def sidecar(self, task: Task, suffix: str) -> Path:
        """A file of the task's own beside its shard (a worker's breadcrumb, a poison list)."""
        return self.root / f"{task.name}.{suffix}"

    def done(self, task: Task) -> dict | None:
        """The marker of a finished task with this key and an intact shard, else None."""
        if self.remote and not self._pulled and not self.marker(task).exists():
            self.pull(task.name)  # committed by another machine (a store that has pulled all knows)
        try:
            info = json.loads(self.marker(task).read_text())
        except (OSError, ValueError):
            return None
        if info.get("key") != task.key:
            return None
        return info if self.intact(Finished(task.index, self.shard(task), info)) else None

    @staticmethod
    def intact(f: Finished) -> bool:
        """Whether a finished task's shard still has the bytes its marker recorded."""
        try:
            return file_sha256(f.shard) == f.info.get("sha256")
        except OSError:  # missing
            return False

    def commit(self, task: Task, info: dict) -> None:
        """Record a task as finished; call only after its shard is in place."""
        shard = self.shard(task)
        rows = pq.read_metadata(shard).num_rows
        atomic_write_text(self.marker(task), json.dumps({"key": task.key, "rows": rows, "sha256": file_sha256(shard), **info},
                                                        sort_keys=True))
        if self.remote:
            self.mirror.push(task.name)

    def prune(self, tasks: list[Task]) -> None:
        """Remove shards and markers of tasks that are not in this plan (inputs changed)."""
        keep = {t.name for t in tasks}
        gone = set()
        for f in self.root.glob("task-*"):
            if f.name.split(".")[0] not in keep:
                gone.add(f.name.split(".")[0])
                f.unlink(missing_ok=True)
        if self.remote and gone:
            self.mirror.forget(sorted(gone))

    def forget(self) -> None:
        """Make every finished task untrusted, so the next run redoes it (its shard is replaced
        atomically when it is redone)."""
        for marker in self.root.glob(f"task-*{_MARKER}"):
            marker.unlink()
        if self.remote:
            self.mirror.forget()

    def shards(self, tasks: list[Task]) -> list[Path]:
        return [self.shard(t) for t in tasks]

    def finished(self, cache: dict | None = None, verify: bool = False,
                 keep: tuple[str, ...] | None = None) -> list[Finished]:
        """Every task with a marker so far, in index order. A marker being replaced under us (a
        running stage) is left for the next look. cache (marker name -> (mtime, Finished)) spares
        re-reading unchanged markers when called again and again beside a running stage. With
        verify (a downstream stage about to read the shards), each shard is checked once against
        its marker's sha256, and one whose bytes changed is a DocsynthError naming it. With keep,
        only those keys of each marker are kept (a cache held for a whole run: an ingest marker
        carries its documents' MinHash signatures, a generate marker its rejects)."""
        cache = {} if cache is None else cache
        self.pull()  # once per store: then the local copy is current (this process commits to both)
        out = []
        for marker in sorted(self.root.glob(f"task-*{_MARKER}")):
            try:
                mtime = marker.stat().st_mtime_ns
                if marker.name not in cache or cache[marker.name][0] != mtime:
                    name = marker.name[:-len(_MARKER)]
                    f = Finished(int(name.split("-")[1]), self.root / f"{name}{self.suffix}", json.loads(marker.read_text()))
                    if verify and not self.intact(f):
                        raise DocsynthError(f"{f.shard} does not hold the bytes its task wrote (sha256 differs from "
                                            f"{marker.name}): it was changed or damaged since; rerun the stage that "
                                            "wrote it (docsynth run, ingest or generate) to redo that task")
                    if keep is not None:
                        f = Finished(f.index, f.shard, {k: f.info[k] for k in keep if k in f.info})
                    cache[marker.name] = (mtime, f)
            except (OSError, ValueError):
                continue
            out.append(cache[marker.name][1])
        return out

    def finished_shards(self) -> list[Path]:
        """The shards of every finished task, in index order."""
        return [f.shard for f in self.finished()]

    def info(self, index: int) -> Finished:
        """The marker of task `index`, which must be finished (an upstream task handed on)."""
        name = Task(index, "").name
        if self.remote and not (self.root / f"{name}{_MARKER}").exists():
            self.pull(name)  # finished on another node
        return Finished(index, self.root / f"{name}{self.suffix}", json.loads((self.root / f"{name}{_MARKER}").read_text()))
