"""The records of a spill file (shuffle.py): one per batch of rows spilled to a shard.

    [Arrow IPC record-batch message: the rows' small columns and places][image bytes][pad to 8]

Where rows carry large images (`Split`), the message's `images` column holds each image's
length and validity instead of its bytes, and the bytes follow, raw, written straight from the
batch that was read with writev: the kernel's copy into the page cache is the only one. A record
is read back from the memory-mapped file with the bytes put back in their column, without
copying them (`Record.batch`). Small images stay in the message: a buffer per row costs more
than copying them with the rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Rows with fewer image bytes than this on average are copied whole. Spilling 64 MB of rows 4
# times (CPU, medians of 5): apart 0.67-0.72x whole at 64-256 KB per row, about even at 6-16 KB,
# and from 0.85x to 1.29x at 2-4 KB (a buffer per row for writev costs more than the copy).
SPLIT_MIN_ROW_BYTES = 16 << 10
IOV_MAX = 1024  # buffers per writev (Linux's limit)


@dataclass(slots=True, frozen=True)
class Record:
    """Where one batch's rows lie in a spill file: an IPC message of `message` bytes at `start`,
    then `blob` bytes of their images (`images`: the column they are put back in)."""
    start: int
    message: int
    blob: int
    schema: pa.Schema
    images: pa.Field | None

    @property
    def end(self) -> int:
        """Where the next record starts (aligned to 8 bytes, as Arrow wants its buffers)."""
        return self.start + self.message + self.blob + (-self.blob % 8)

    def batch(self, whole: pa.Buffer) -> pa.RecordBatch:
        """The rows, read from the mapped file without copying their image bytes."""
        b = pa.ipc.read_record_batch(whole.slice(self.start, self.message), self.schema)
        return b if self.images is None else _joined(b, self.images, whole.slice(self.start + self.message, self.blob))


def write_record(fd: int, start: int, rows: pa.RecordBatch, blob: list[memoryview], images: pa.Field | None) -> Record:
    """Append a record of ROWS (and the image bytes BLOB, for the column `images`) to the file
    open as fd (with O_APPEND), which ends at `start`."""
    message = rows.serialize()
    size = sum(len(v) for v in blob)
    _write_all(fd, [message, *blob, b"\0" * (-size % 8)])
    return Record(start, message.size, size, rows.schema, images)


class Split:
    """A batch whose `images` column is a list of structs with a binary `bytes` field, split in
    two: `small`, the batch with each image's bytes replaced by their length and validity (`len`,
    `valid`), and the bytes, left where they lie in the batch (`blobs` gives them by row)."""

    def __init__(self, rows: pa.RecordBatch, i: int, j: int) -> None:
        col = rows.column(i)
        values = col.values  # the structs, not cut to the column's offset (offsets index into it)
        b = values.field(j)
        self.data = memoryview(b.buffers()[2]).cast("B")
        self.lo = np.frombuffer(col.buffers()[1], np.int32, len(col) + 1, col.offset * 4)
        self.bo = np.frombuffer(b.buffers()[1], np.int32, len(b) + 1, b.offset * 4)
        st = values.type
        others = [k for k in range(st.num_fields) if k != j]
        meta = pa.StructArray.from_arrays(
            [pa.array(np.diff(self.bo)), pc.is_valid(b), *(values.field(k) for k in others)],
            fields=[pa.field("len", pa.int32(), False), pa.field("valid", pa.bool_(), False), *(st.field(k) for k in others)],
            mask=pc.is_null(values) if values.null_count else None)
        meta = pa.ListArray.from_arrays(pa.array(self.lo), meta, mask=pc.is_null(col) if col.null_count else None)
        self.field = rows.schema.field(i)
        self.i = i
        self.small = rows.set_column(i, pa.field(self.field.name, meta.type, self.field.nullable), meta)

    @classmethod
    def of(cls, rows: pa.RecordBatch, min_row_bytes: int) -> Split | None:
        """The split of a batch with at least `min_row_bytes` of images per row; None for any other."""
        i = rows.schema.get_field_index("images")
        if i < 0 or not rows.num_rows:
            return None
        t = rows.schema.field(i).type
        if not (pa.types.is_list(t) and pa.types.is_struct(t.value_type)):
            return None
        j = t.value_type.get_field_index("bytes")
        if j < 0 or t.value_type.field(j).type != pa.binary():
            return None
        data = rows.column(i).values.field(j).buffers()[2]
        if data is None or data.size < min_row_bytes * rows.num_rows:
            return None
        return cls(rows, i, j)

    def blobs(self, take: np.ndarray, small: pa.RecordBatch) -> _Blobs:
        """The image bytes of rows `take`, taken (in that order) into `small`."""
        meta = small.column(self.i)
        mo = np.frombuffer(meta.buffers()[1], np.int32, len(meta) + 1, meta.offset * 4)
        first = self.lo[take]
        starts, ends = self.bo[first].astype(np.int64), self.bo[first + np.diff(mo)].astype(np.int64)
        lens = np.asarray(meta.values.field(0))[mo[0]:mo[-1]]
        if int(lens.sum()) != int((ends - starts).sum()):  # the take kept other images than the rows' own
            raise RuntimeError("spill: the rows' image bytes do not match their lengths")
        return _Blobs(self.data, starts, ends)


@dataclass(slots=True, frozen=True)
class _Blobs:
    data: memoryview
    starts: np.ndarray
    ends: np.ndarray

    def __call__(self, a: int, n: int) -> list[memoryview]:
        """The bytes of rows a..a+n, as views of the batch (rows that follow each other joined)."""
        starts, ends = self.starts[a:a + n], self.ends[a:a + n]
        keep = ends > starts
        starts, ends = starts[keep], ends[keep]
        if not len(starts):
            return []
        cut = np.flatnonzero(starts[1:] != ends[:-1]) + 1
        return [self.data[x:y] for x, y in zip(starts[np.r_[0, cut]].tolist(), ends[np.r_[cut - 1, len(ends) - 1]].tolist())]


def _joined(b: pa.RecordBatch, field: pa.Field, blob: pa.Buffer) -> pa.RecordBatch:
    """A spilled batch with its image bytes put back: `blob` holds them, image after image."""
    i = b.schema.get_field_index(field.name)
    meta = b.column(i)
    values = meta.values
    if meta.offset or values.offset:  # (arrays read from IPC start at 0)
        raise RuntimeError("spill: unexpected offset in a spilled images column")
    lens = np.asarray(values.field(0))
    offsets = np.zeros(len(lens) + 1, np.int32)
    np.cumsum(lens, out=offsets[1:])
    valid = np.asarray(values.field(1))
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    st = field.type.value_type
    data = pa.Array.from_buffers(pa.binary(), len(lens), [validity, pa.py_buffer(offsets), blob])
    children = [values.field(k) for k in range(2, values.type.num_fields)]
    children.insert(st.get_field_index("bytes"), data)
    structs = pa.Array.from_buffers(st, len(values), [values.buffers()[0]], children=children)
    images = pa.Array.from_buffers(field.type, len(meta), meta.buffers()[:2], children=[structs])
    return b.set_column(i, field, images)


def _write_all(fd: int, buffers: list) -> None:
    """Write the buffers, in order, with writev (resumed after a short write)."""
    views = [v for v in (memoryview(b).cast("B") for b in buffers) if len(v)]
    i = 0
    while i < len(views):
        n = os.writev(fd, views[i:i + IOV_MAX])
        while n:
            if n >= len(views[i]):
                n -= len(views[i])
                i += 1
            else:
                views[i], n = views[i][n:], 0
