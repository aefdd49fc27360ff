"""Finding input documents and giving each a content id.

Inputs are PDF files, directories (recursive), globs, parquet files or
directories with a binary PDF column, and WebDataset tar shards (docsynth.ingest.tars).
Any of them may be remote (`s3://`, `gs://`, `hf://`, `https://`: docsynth.core.remote).
Documents are listed in a stable order (sorted paths, then row or member order) and
identified by the sha256 of their bytes, so the same PDF under two names is one document
and reruns give the same ids.
"""

from __future__ import annotations

import bisect
import functools
import glob
import itertools
import hashlib
import logging
import errno
import os
import stat as filemode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from docsynth.core.errors import DocsynthError
from docsynth.core.records import Reject
from docsynth.config.recipe import InputsConfig
from docsynth.core.remote import expand, is_remote, open_stream, read_all, read_range, shown, stat
from docsynth.ingest.tars import is_tar, read_member, tar_members

log = logging.getLogger(__name__)
_GLOB_CHARS = set("*?[")
_PARQUET = (".parquet", ".pq")


@dataclass(slots=True, frozen=True)
class DocRef:
    """Where one document's bytes are: a file, one row of a parquet file, or one member of a tar
    shard (its name, and its data's offset)."""

    doc_id: str
    path: str
    row: int | None = None
    size: int = 0  # bytes: a cost estimate for scheduling (a tar member's exact size)
    member: str | None = None
    offset: int = 0
    meta: str | None = None  # a tar member's KEY.json sidecar, compact JSON: the pages' provenance
    pages: tuple[int, int] | None = None  # a part of a large document: its pages start..stop-1 (docsynth.ingest.split)

    @property
    def first(self) -> bool:
        """The whole document, or its first part (which speaks for the whole: its rejects, its count)."""
        return self.pages is None or self.pages[0] == 0

    @property
    def source(self) -> str:
        path = shown(self.path) if is_remote(self.path) else self.path  # never a URL's credentials
        if self.member is not None:
            return f"{path}#{self.member}"
        return path if self.row is None else f"{path}#{self.row}"


def content_id(data: bytes) -> str:
    """The document id: the first 24 hex digits of the sha256 of its bytes."""
    return hashlib.sha256(data).hexdigest()[:24]


def read_document(ref: DocRef, pdf_column: str) -> bytes:
    """The bytes of one document."""
    remote = is_remote(ref.path)
    if ref.member is not None:
        return read_range(ref.path, ref.offset, ref.size) if remote else read_member(ref.path, ref.offset, ref.size)
    if ref.row is None:
        return read_all(ref.path) if remote else Path(ref.path).read_bytes()
    if remote:
        size, version = stat(ref.path)
    else:
        st = os.stat(ref.path)
        size, version = st.st_size, str(st.st_mtime_ns)
    starts = _row_group_starts(ref.path, size, version)
    rg = bisect.bisect_right(starts, ref.row) - 1
    if ref.row >= starts[-1]:
        raise DocsynthError(f"{ref.source}: row is past the end of the file")
    column = _row_group_column(ref.path, size, version, rg, pdf_column)
    return column[ref.row - starts[rg]].as_py() or b""


# A task's rows are consecutive, so they share row groups: read each once, not once per row.
# Keyed by size and mtime (an object's ETag) too, so a rewritten file is never served from the cache.
@functools.lru_cache(maxsize=8)
def _row_group_starts(path: str, size: int, version: str) -> list[int]:
    """First row of each row group, then the total row count."""
    meta = _parquet(path).metadata
    starts = [0]
    for rg in range(meta.num_row_groups):
        starts.append(starts[-1] + meta.row_group(rg).num_rows)
    return starts


@functools.lru_cache(maxsize=1)  # one row group of PDFs in memory at a time
def _row_group_column(path: str, size: int, version: str, rg: int, column: str):
    return _parquet(path).read_row_group(rg, columns=[column]).column(0)


def _parquet(path: str | Path) -> pq.ParquetFile:
    """A parquet file, local or remote (read by ranges: its footer, then the row groups asked for)."""
    return pq.ParquetFile(open_stream(str(path)) if is_remote(str(path)) else path)


def _suffix(f: Path | str) -> str:
    return Path(str(f).split("?", 1)[0]).suffix.lower()


def _wanted(f: Path | str) -> bool:
    """A file an input folder (or a remote listing) contributes: PDFs, parquet shards, tar shards."""
    return _suffix(f) in (".pdf", *_PARQUET) or is_tar(Path(str(f)))


def input_holding(paths: list[str], base: Path, out: Path) -> str | None:
    """The input that would take in the folder `out` (which may not exist yet): a folder above
    it, a recursive glob whose fixed part is above it, or a glob matching it or a folder above it
    (a matched folder is searched whole)."""
    out = out.resolve()
    for raw in paths:
        if is_remote(raw):
            continue
        p = Path(raw).expanduser()
        p = p if p.is_absolute() else base / p
        if not _GLOB_CHARS & set(raw):
            if p.is_dir() and (out == p.resolve() or p.resolve() in out.parents):
                return raw
            continue
        fixed = next(i for i, part in enumerate(p.parts) if _GLOB_CHARS & set(part))
        root = Path(*p.parts[:fixed]).resolve()
        pattern = str(root.joinpath(*p.parts[fixed:]))
        inside = [a for a in (out, *out.parents) if root in a.parents]
        if root in (out, *out.parents) and ("**" in raw or any(a.match(pattern) for a in inside)):
            return raw
    return None


def expand_inputs(paths: list[str], base: Path) -> Iterator[Path | str]:
    """Input files in a stable order (remote ones as URLs), each once; DocsynthError names any
    input that matches nothing, when it is reached. A folder is walked a directory at a time
    (_walk), never listed whole: 1.3M files held as paths cost the driver about 0.5 GB."""
    seen: set[int] = set()  # hashes of real paths: an input named twice (a folder and a file in it) is read once

    def new(f: Path | str) -> bool:
        k = hash(f if isinstance(f, str) else os.path.realpath(f))  # realpath: a link loop does not raise
        return not (k in seen or seen.add(k))

    for raw in paths:
        if is_remote(raw):
            found = [u for u in expand(raw) if _wanted(u)]
            if not found:
                raise DocsynthError(f"remote input holds no .pdf, .parquet or .tar files: {shown(raw)}")
            yield from filter(new, found)
            continue
        p = Path(raw).expanduser()
        if not p.is_absolute():
            p = base / p
        if _GLOB_CHARS & set(raw):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            n = 0
            for f in itertools.chain((m for m in matches if not m.is_dir()),
                                     (f for m in matches if m.is_dir() for f in _walk(m))):
                n += 1
                if new(f):
                    yield f
            if not n:
                raise DocsynthError(f"input glob matches no files: {raw}")
        elif p.is_dir():
            n = 0
            for f in _walk(p):
                n += 1
                if new(f):
                    yield f
            if not n:
                raise DocsynthError(f"input directory holds no .pdf, .parquet or .tar files: {raw}")
        elif p.is_file() or p.is_symlink() or os.path.lexists(p):  # what is not a regular file: a reject, named
            if new(p):
                yield p
        else:
            raise DocsynthError(f"input not found: {raw}")


def _walk(d: Path) -> Iterator[Path]:
    """A folder's input files, and the entries named like one that are not regular files (a FIFO,
    a device, a link that is dangling, loops or points at a device): those are rejected with why
    (`not_regular`), never opened and never skipped silently. In the order of sorted(d.rglob("*"))
    (paths compare part by part: a depth-first walk with each directory's names sorted), one
    directory read at a time; links to directories are not followed, as rglob does not."""
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:  # unreadable: rglob skips it too
        return
    for e in entries:
        f = d / e.name
        try:
            descend = e.is_dir(follow_symlinks=False)
        except OSError:
            descend = False
        if descend:
            yield from _walk(f)
        elif _wanted(f) and not f.is_dir():
            yield f


def not_regular(p: Path) -> str | None:
    """Why a local input is not a regular file to read (None if it is), from stat alone: a FIFO
    or a device would block or never end if opened."""
    link = " (through a symbolic link)" if p.is_symlink() else ""
    try:
        mode = p.stat().st_mode  # follows links
    except FileNotFoundError:
        return "a dangling symbolic link" if p.is_symlink() else "not found"
    except OSError as e:
        return "a symbolic link loop" if e.errno == errno.ELOOP else f"cannot be read: {e.strerror or e}"
    if filemode.S_ISREG(mode):
        return None
    kind = next((k for test, k in ((filemode.S_ISFIFO, "a FIFO"), (filemode.S_ISCHR, "a character device"),
                                   (filemode.S_ISBLK, "a block device"), (filemode.S_ISSOCK, "a socket"),
                                   (filemode.S_ISDIR, "a directory")) if test(mode)), "not a file")
    return f"not a regular file: {kind}{link}"


def check_parquet(path: Path | str, column: str) -> pq.ParquetFile:
    """Open a parquet input; DocsynthError names the file and column if its schema does not fit."""
    try:
        pf = _parquet(path)
    except DocsynthError:
        raise
    except Exception as e:
        raise DocsynthError(f"{path}: not a readable parquet file: {e}") from None
    schema = pf.schema_arrow
    if column not in schema.names:
        raise DocsynthError(
            f"{path}: no column '{column}' holding PDFs (columns: {', '.join(schema.names)}); "
            f"set inputs.pdf_column in the recipe")
    typ = schema.field(column).type
    if not (pa.types.is_binary(typ) or pa.types.is_large_binary(typ)):
        raise DocsynthError(f"{path}: column '{column}' is {typ}, not binary PDF bytes")
    return pf


def iter_documents(cfg: InputsConfig, base: Path, reject: Callable[[Reject], None]) -> Iterator[DocRef]:
    """Every input document once, in a stable order, duplicates by content skipped."""
    seen: set[str] = set()  # doc ids: about 100 bytes a document
    emitted = 0
    for f in expand_inputs(cfg.paths, base):
        if _suffix(f) in _PARQUET:
            refs = _parquet_docs(f, check_parquet(f, cfg.pdf_column), cfg.pdf_column, reject)
        else:
            refs = _tar_docs(f, reject) if is_tar(Path(str(f))) else _file_doc(f, reject)
        for ref in refs:
            if ref.doc_id in seen:
                log.info("%s is a duplicate of an earlier input (same content: document %s); ingested once",
                         ref.source, ref.doc_id)
                continue
            seen.add(ref.doc_id)
            yield ref
            emitted += 1
            if cfg.max_docs is not None and emitted >= cfg.max_docs:
                return


def _file_doc(f: Path | str, reject: Callable[[Reject], None]) -> Iterator[DocRef]:
    if isinstance(f, str):  # remote: read once to hash it (a PDF, not a shard)
        data = read_all(f)
        if not data:
            reject(Reject("ingest", shown(f), None, None, "empty file"))
        else:
            yield DocRef(content_id(data), f, None, len(data))
        return
    why = not_regular(f)
    if why:
        log.info("%s is skipped: %s", f, why)  # the reject says it (the summary counts it)
        reject(Reject("ingest", str(f), None, None, why))
        return
    try:
        with f.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()[:24]
        size = f.stat().st_size
    except OSError as e:
        reject(Reject("ingest", str(f), None, None, f"unreadable: {e.strerror or e}"))
        return
    if size == 0:
        reject(Reject("ingest", str(f), None, None, "empty file"))
        return
    yield DocRef(digest, str(f), None, size)


def _tar_docs(f: Path | str, reject: Callable[[Reject], None]) -> Iterator[DocRef]:
    for name, digest, offset, size, meta, _ in tar_members(f, reject):
        if size == 0:
            reject(Reject("ingest", f"{f}#{name}", None, None, "empty PDF member"))
            continue
        yield DocRef(digest, str(f), None, size, name, offset, meta)


def _parquet_docs(f: Path, pf: pq.ParquetFile, column: str, reject: Callable[[Reject], None]) -> Iterator[DocRef]:
    row = 0
    for batch in pf.iter_batches(batch_size=64, columns=[column]):
        for value in batch.column(0):
            data = value.as_py()
            if not data:
                reject(Reject("ingest", f"{f}#{row}", None, None, "empty or null PDF cell"))
            else:
                yield DocRef(content_id(data), str(f), row, len(data))
            row += 1
