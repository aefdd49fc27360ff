"""Run directories on object storage (`--out s3://bucket/run`): the run works in a local copy
(DOCSYNTH_CACHE/runs/<hash of the URL>), and the object store holds what a rerun, or another
node, may trust.

Object stores have no atomic rename, so the commit is ordered: a task's shard is uploaded under
a name of its own (`task-00003.<sha256[:16]>.parquet`: two runs never write one name with
different bytes), and its marker (`task-00003.done.json`, the local marker plus the object's
name and size) is written after it, as the commit record. A run trusts a marker only when its
shard object exists with the recorded size and the downloaded bytes have the marker's sha256;
anything else is redone. Two runs writing one run directory therefore never corrupt it: each
marker names a complete shard, and the last marker written wins.

The run's other files (recipes, manifests, rejects, run.json, the dataset) are summaries that a
rerun writes again; they are uploaded when the run ends, the dataset card last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import logging
from collections.abc import Iterator
from pathlib import Path

from docsynth.core.files import cache_dir, file_sha256
from docsynth.core.remote import filesystem, is_remote, retried, shown

log = logging.getLogger(__name__)
MARKER = ".done.json"
_RUNS: dict[Path, str] = {}  # local copy -> its run directory's URL, for the runs of this process


def local_copy(url: str) -> Path:
    """Where a remote run directory is worked on this machine."""
    return cache_dir() / "runs" / hashlib.sha256(shown(url).rstrip("/").encode()).hexdigest()[:16]


def remote_of(local: Path) -> str | None:
    """The URL of the remote folder a local folder of a registered run mirrors, if any."""
    local = Path(local).resolve()
    for root, url in _RUNS.items():
        if local == root or root in local.parents:
            return url.rstrip("/") + ("/" + local.relative_to(root).as_posix() if local != root else "")
    return None


@contextlib.contextmanager
def run_directory(out: str | Path) -> Iterator[Path]:
    """The local directory a run works in: out itself, or for a URL its local copy, registered so
    every task store of the run commits to the object store too; the run's other files are
    uploaded when the block ends without an error."""
    if not is_remote(str(out)):
        yield Path(out)
        return
    url = str(out).rstrip("/")
    filesystem(url)  # a missing filesystem package is said now, before any work
    local = local_copy(url).resolve()
    local.mkdir(parents=True, exist_ok=True)
    _RUNS[local] = url
    try:
        yield local
        push_files(local, url)
    finally:
        _RUNS.pop(local, None)


class Mirror:
    """One stage folder's tasks on object storage (what TaskStore calls when its folder is remote)."""

    def __init__(self, url: str, root: Path, suffix: str) -> None:
        self.url, self.root, self.suffix = url.rstrip("/"), root, suffix
        self.fs, self.path = filesystem(self.url)

    def push(self, name: str) -> None:
        """Upload a committed task: its shard under a unique name, then its marker (the commit)."""
        info = json.loads((self.root / f"{name}{MARKER}").read_text())
        shard = self.root / f"{name}{self.suffix}"
        obj = f"{name}.{info['sha256'][:16]}{self.suffix}"
        target = f"{self.path}/{obj}"
        retried("uploading", f"{self.url}/{obj}", lambda: self.fs.put_file(str(shard), target))
        record = json.dumps({**info, "object": obj, "size": shard.stat().st_size}, sort_keys=True).encode()
        retried("committing", f"{self.url}/{name}{MARKER}",
                lambda: self.fs.pipe_file(f"{self.path}/{name}{MARKER}", record))

    def pull(self, name: str | None = None) -> int:
        """Download the committed tasks (or one) whose local copy is missing or differs; a marker
        whose shard object is missing, of another size or of other bytes is not trusted. Returns
        how many tasks were brought."""
        markers = self._markers(name)
        brought = 0
        for key in markers:
            task = key.rsplit("/", 1)[-1][:-len(MARKER)]
            try:
                info = json.loads(retried("reading", f"{self.url}/{task}{MARKER}", lambda key=key: self.fs.cat_file(key)))
            except ValueError:
                log.warning("%s/%s%s is not a marker; not trusted", shown(self.url), task, MARKER)
                continue
            if self._local_matches(task, info):
                continue
            brought += self._bring(task, info)
        return brought

    def _markers(self, name: str | None) -> list[str]:
        if name is not None:
            key = f"{self.path}/{name}{MARKER}"
            return [key] if retried("looking it up", self.url, lambda: self.fs.exists(key)) else []
        if not retried("looking it up", self.url, lambda: self.fs.exists(self.path)):
            return []
        return sorted(k for k in retried("listing", self.url, lambda: self.fs.ls(self.path, detail=False, refresh=True))
                      if k.endswith(MARKER) and k.rsplit("/", 1)[-1].startswith("task-"))

    def _local_matches(self, task: str, info: dict) -> bool:
        try:
            local = json.loads((self.root / f"{task}{MARKER}").read_text())
            return local.get("sha256") == info.get("sha256") and local.get("key") == info.get("key") and \
                file_sha256(self.root / f"{task}{self.suffix}") == info.get("sha256")
        except (OSError, ValueError):
            return False

    def _bring(self, task: str, info: dict) -> int:
        obj, size = info.get("object"), info.get("size")
        src = f"{self.path}/{obj}"
        try:
            there = retried("looking it up", f"{self.url}/{obj}", lambda: self.fs.info(src))
        except Exception as e:  # DocsynthError for a missing object: an incomplete commit
            log.warning("%s: its shard %s is not there (%s); the task will be redone", task, obj, e)
            return 0
        if not obj or int(there.get("size") or -1) != size:
            log.warning("%s: its shard object has %s bytes, not the %s recorded; the task will be redone",
                        task, there.get("size"), size)
            return 0
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{task}{self.suffix}.pull.tmp"
        retried("downloading", f"{self.url}/{obj}", lambda: self.fs.get_file(src, str(tmp)))
        if file_sha256(tmp) != info.get("sha256"):
            tmp.unlink(missing_ok=True)
            log.warning("%s: its shard's bytes differ from the marker's sha256; the task will be redone", task)
            return 0
        tmp.replace(self.root / f"{task}{self.suffix}")
        local = {k: v for k, v in info.items() if k not in ("object", "size")}
        (self.root / f".{task}{MARKER}.pull.tmp").write_text(json.dumps(local, sort_keys=True))
        (self.root / f".{task}{MARKER}.pull.tmp").replace(self.root / f"{task}{MARKER}")
        return 1

    def forget(self, names: list[str] | None = None) -> None:
        """Remove the markers (all, or these tasks'): those tasks are no longer trusted anywhere."""
        keys = self._markers(None)
        for k in keys:
            if names is None or k.rsplit("/", 1)[-1][:-len(MARKER)] in names:
                retried("removing", self.url, lambda k=k: self.fs.rm_file(k))


def push_files(local: Path, url: str) -> None:
    """Upload the run's files that are not task shards or markers (those are pushed as each task
    commits): top-level files, then the dataset's shards, then its card (README.md) last."""
    fs, path = filesystem(url)
    tasks = {"pages", "candidates", "verdicts"}
    files = [f for f in _files(local) if f.name != ".docsynth.lock"
             and not f.name.endswith(".tmp") and f.relative_to(local).parts[0] not in tasks]
    files.sort(key=lambda f: f.name == "README.md")  # the card names the shards: it goes last
    for f in files:
        rel = f.relative_to(local).as_posix()
        if rel.startswith("dataset/data/") and _same_size(fs, f"{path}/{rel}", f.stat().st_size):
            continue  # a dataset shard's name holds its version: there already, from an earlier run
        retried("uploading", f"{url}/{rel}", lambda f=f, rel=rel: fs.put_file(str(f), f"{path}/{rel}"))


def _files(local: Path) -> list[Path]:
    """The files under local as a reader sees them: a linked folder under the link's name (a
    published dataset's data/ links to its live version), hidden folders (each version's own,
    caches) left out."""
    found = []
    for root, dirs, names in os.walk(local, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / n for n in names if (Path(root) / n).is_file()]
    return sorted(found)


def _same_size(fs, key: str, size: int) -> bool:
    try:
        return int(fs.info(key).get("size") or -1) == size
    except Exception:  # not there (or not readable): upload it
        return False
