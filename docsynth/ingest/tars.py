"""WebDataset tar shards as inputs, as PDFA (the corpus Docmatix was made from) is published:
each document a `KEY.pdf` member beside a `KEY.json` of metadata, the members of one key
adjacent. Members are never extracted: planning reads the shard once, in order, to give each PDF
its content id and its data's offset; a worker then reads its document with one seek and one
read. Documents are listed in member order, so tasks are ranges of members and resume as
parquet rows do.

A truncated shard gives the documents before the cut and one reject naming the member where it
ends; a corrupt member (bytes that are no PDF) is rejected by ingest like a corrupt file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from docsynth.core.records import Reject
from docsynth.core.remote import is_remote, open_stream, shown

log = logging.getLogger(__name__)
TAR_SUFFIXES = (".tar",)
MAX_SIDECAR_BYTES = 65_536  # metadata, not content: a larger KEY.json is left out of the provenance


def is_tar(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def key_of(name: str) -> tuple[str, str]:
    """(key, extension) of a member, as WebDataset splits it: the basename up to its first dot."""
    p = PurePosixPath(name)
    stem, _, ext = p.name.partition(".")
    return str(p.parent / stem), ext.lower()


def tar_members(path: Path | str, reject: Callable[[Reject], None]) -> Iterator[tuple[str, str, int, int, str | None, bytes]]:
    """(member name, content sha256, data offset, size, sidecar JSON or None, the PDF bytes) of
    every `.pdf` member, in member order; a truncated or unreadable shard is a reject from the
    point it breaks."""
    try:  # plain tar only: offsets into a compressed stream cannot be seeked
        tf = tarfile.open(fileobj=open_stream(path), mode="r:") if is_remote(str(path)) else tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as e:
        reject(Reject("ingest", shown(str(path)), None, None, f"unreadable tar: {e}"))
        return
    with tf:
        group: dict = {}  # the current key's pdf member and sidecar
        member = None
        try:
            while (member := tf.next()) is not None:
                if not member.isfile():
                    continue
                key, ext = key_of(member.name)
                if group and group["key"] != key:
                    yield from _emit(group)
                    group = {}
                group.setdefault("key", key)
                if ext == "pdf":
                    data = tf.extractfile(member).read()
                    group["pdf"] = (member.name, member.offset_data, member.size, data)
                elif ext == "json":
                    group["meta"] = _sidecar(tf, member)
        except (tarfile.TarError, OSError, EOFError) as e:
            where = f"{shown(str(path))}#{member.name}" if member is not None else shown(str(path))
            reject(Reject("ingest", where, None, None, f"truncated or corrupt tar: {e}; the members after it are lost"))
        if group:
            yield from _emit(group)


def _emit(group: dict):
    if "pdf" in group:
        name, offset, size, data = group["pdf"]
        yield name, hashlib.sha256(data).hexdigest()[:24], offset, size, group.get("meta"), data


def _sidecar(tf: tarfile.TarFile, member: tarfile.TarInfo) -> str | None:
    """The KEY.json member as compact JSON, if it is a JSON object of sane size."""
    if member.size > MAX_SIDECAR_BYTES:
        log.warning("%s: sidecar of %d bytes left out of the provenance", member.name, member.size)
        return None
    try:
        meta = json.loads(tf.extractfile(member).read())
    except ValueError:
        log.warning("%s: sidecar is not JSON; left out of the provenance", member.name)
        return None
    return json.dumps(meta, sort_keys=True, ensure_ascii=False) if isinstance(meta, dict) else None


def read_member(path: str, offset: int, size: int) -> bytes:
    """One member's bytes, by its data offset: OSError if the shard is shorter than that now."""
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise OSError(f"tar member cut short ({len(data)} of {size} bytes)")
    return data
