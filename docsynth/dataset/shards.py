"""Writing Cauldron shards a row group at a time, so a writer holds one row group, never a shard.

The write stage once gathered a whole shard's rows before writing it: its memory grew with
`write.shard_rows`, about 0.4 MB a row (2 GB at the default 5,000; issue 35). Here rows arrive
as record batches and leave as row groups of about `row_group_bytes`.

    RowGroupFile    one parquet file, written a row group at a time
    ShardCutter     a stream of batches cut into shards of at most `rows` rows and about `bytes`
                    image bytes, each a RowGroupFile; the shards are named by the caller
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from docsynth.dataset.cauldron import WRITE_OPTIONS


def image_bytes(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """Each row's image bytes (what a shard's size is counted in)."""
    images = batch.column("images")
    lengths = pc.list_value_length(images).fill_null(0).to_numpy(zero_copy_only=False)
    flat = pc.struct_field(pc.list_flatten(images), "bytes")
    sizes = pc.binary_length(flat).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    ends = np.cumsum(lengths)
    per_row = np.add.reduceat(sizes, ends - lengths) if len(sizes) else np.zeros(len(lengths), np.int64)
    return np.where(lengths > 0, per_row, 0).astype(np.int64)


class RowGroupFile:
    """A parquet file written at `path` a row group at a time: batches are held until they make
    about `row_group_bytes`, then written as one group. Written to a temporary name and renamed
    by close(), so a reader never sees half of it; abort() removes what was written."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_bytes: int) -> None:
        self.path, self.schema, self.target = path, schema, row_group_bytes
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self.writer: pq.ParquetWriter | None = None
        self.held: list[pa.RecordBatch] = []
        self.held_bytes = 0
        self.rows = 0

    def add(self, batch: pa.RecordBatch, nbytes: int) -> None:
        if not batch.num_rows:
            return
        self.held.append(batch)
        self.held_bytes += nbytes
        self.rows += batch.num_rows
        if self.held_bytes >= self.target:
            self._flush()

    def _flush(self) -> None:
        if not self.held:
            return
        table = pa.Table.from_batches(self.held).cast(self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, self.schema, **WRITE_OPTIONS)
        self.writer.write_table(table, row_group_size=table.num_rows)
        self.held, self.held_bytes = [], 0

    def close(self) -> Path:
        try:
            self._flush()
            if self.writer is None:  # no row at all: an empty file of the schema
                self.writer = pq.ParquetWriter(self.tmp, self.schema, **WRITE_OPTIONS)
            self.writer.close()
            self.tmp.replace(self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - a full disk fails the close too; the file goes either way
                pass
        self.tmp.unlink(missing_ok=True)


class ShardCutter:
    """Cut a stream of batches into shards: a shard ends once it has `rows` rows, or `nbytes`
    image bytes or more (the row that reaches it is its last). Each shard is a RowGroupFile at
    name(i)."""

    def __init__(self, name: Callable[[int], Path], schema: pa.Schema, rows: int, nbytes: int,
                 row_group_bytes: int) -> None:
        self.name, self.schema, self.max_rows, self.max_bytes = name, schema, rows, nbytes
        self.row_group_bytes = row_group_bytes
        self.done: list[Path] = []
        self.open: RowGroupFile | None = None
        self.bytes = 0

    def add(self, batch: pa.RecordBatch) -> None:
        sizes = image_bytes(batch)
        start = 0
        while start < batch.num_rows:
            if self.open is None:
                self.open = RowGroupFile(self.name(len(self.done)), self.schema, self.row_group_bytes)
                self.bytes = 0
            cum = np.cumsum(sizes[start:])
            reach = int(np.searchsorted(cum, self.max_bytes - self.bytes, side="left"))  # the row that reaches it
            take = min(self.max_rows - self.open.rows, reach + 1, batch.num_rows - start)
            piece = batch.slice(start, take)
            got = int(cum[take - 1])
            self.open.add(piece, got + piece.num_rows * 256)  # 256: a row's text, about
            self.bytes += got
            start += take
            if self.open.rows >= self.max_rows or self.bytes >= self.max_bytes:
                self._close()

    def _close(self) -> None:
        self.done.append(self.open.close())
        self.open = None

    def close(self) -> list[Path]:
        """The shards written, in order (the last one closed here)."""
        if self.open is not None and self.open.rows:
            self._close()
        return self.done

    def abort(self) -> None:
        if self.open is not None:
            self.open.abort()
