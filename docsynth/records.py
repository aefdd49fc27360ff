"""Intermediate records passed between stages, and their parquet schemas."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import pyarrow as pa


@dataclass(slots=True)
class Page:
    """One rendered page with its text; the output record of ingest."""

    doc_id: str
    source: str  # the input path, or "path#row" for a row of a parquet input
    page: int  # 0-based page index within the document
    num_pages: int
    image: bytes
    image_format: str  # "jpeg" | "png" | "webp"
    width: int
    height: int
    dpi: float  # effective dpi after the pixel cap
    text: str
    text_source: str  # "layer" | "ocr" | "none"
    ocr_confidence: float | None  # mean tesseract word confidence (0-100), OCR pages only


PAGE_SCHEMA = pa.schema([
    ("doc_id", pa.string()), ("source", pa.string()), ("page", pa.int32()), ("num_pages", pa.int32()),
    ("image", pa.binary()), ("image_format", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("dpi", pa.float32()), ("text", pa.string()), ("text_source", pa.string()),
    ("ocr_confidence", pa.float32()),
])
assert [f.name for f in fields(Page)] == PAGE_SCHEMA.names


@dataclass(slots=True)
class Reject:
    """A file or page that could not be processed, and why."""

    stage: str
    source: str
    doc_id: str | None
    page: int | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def pages_to_table(pages: list[Page]) -> pa.Table:
    """Columnar table of pages in PAGE_SCHEMA."""
    cols = {name: [getattr(p, name) for p in pages] for name in PAGE_SCHEMA.names}
    return pa.table(cols, schema=PAGE_SCHEMA)
