"""Small Cauldron-style sources for mixer and loader tests: every row says which source and row it
is (texts[0].user == "SOURCE/ROW"), with a real PNG whose pixels encode the same."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from docsynth.dataset.cauldron import SCHEMA


def png(seed: int, size: int = 8) -> bytes:
    im = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 13) % 256))
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


def rows(name: str, n: int, turns: int = 1, images: int = 1, first: int = 0) -> list[dict]:
    return [{"images": [{"bytes": png(i + k), "path": None} for k in range(images)],
             "texts": [{"user": f"{name}/{i}" + (f"#{t}" if t else ""), "assistant": f"answer {t}", "source": name}
                       for t in range(turns)]}
            for i in range(first, first + n)]


def cauldron_source(root: Path, name: str, n: int, shards: int = 1, row_group: int = 16, **kw) -> Path:
    """ROOT/NAME/data/train-*.parquet with n rows over `shards` files."""
    d = root / name / "data"
    d.mkdir(parents=True, exist_ok=True)
    per = -(-n // shards)
    for s in range(shards):
        lo, hi = s * per, min(n, (s + 1) * per)
        if lo >= hi:
            break
        table = pa.Table.from_pylist(rows(name, hi - lo, first=lo, **kw), schema=SCHEMA)
        pq.write_table(table, d / f"train-{s:05d}-of-{shards:05d}.parquet", row_group_size=row_group)
    return root / name


def users(table: pa.Table) -> list[str]:
    return [t[0]["user"] for t in table.column("texts").to_pylist()]


def picture(w: int, h: int, fmt: str) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(b, fmt)
    return b.getvalue()
