"""Samples of a dataset, mixture or run for people to look at: which rows (in order, from an index,
of one source, or shuffled with a seed), a run's rejects with their reasons, and images drawn
for a terminal (ANSI half-blocks in 24-bit colour, Sixel, or the Kitty graphics protocol).
Plain strings only: the CLI decides what goes where."""

from __future__ import annotations

import base64
import io
import os
import re
import select
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from docsynth.dataset.cauldron import dataset_shards
from docsynth.dataset.rowcheck import row_problems
from docsynth.dataset.permute import Permutation
from docsynth.core.errors import DocsynthError
from docsynth.core.records import read_rejects
from docsynth.core.rundir import REJECT_FILES
from docsynth.core.tasks import TaskStore
from docsynth.dataset.stats import image_size


@dataclass(slots=True)
class Item:
    """One thing to show: a sample (its images and QA pairs) or a reject (with its reason)."""

    index: int
    total: int
    images: list[bytes]
    pairs: list[tuple[str, str]]
    source: str
    reason: str | None = None
    details: dict = field(default_factory=dict)
    unusable: str | None = None  # why a loader cannot use this sample (docsynth.dataset.rowcheck)


class Rows:
    """Random access to a dataset's rows by index, a row group at a time."""

    def __init__(self, path: Path) -> None:
        self.groups: list[tuple[Path, int, int]] = []  # (shard, group, first row)
        self.total = 0
        for shard in dataset_shards(path):
            meta = pq.read_metadata(shard)
            for g in range(meta.num_row_groups):
                self.groups.append((shard, g, self.total))
                self.total += meta.row_group(g).num_rows
        self._starts = np.array([g[2] for g in self.groups] + [self.total])
        self._cached: dict[tuple[str, ...], tuple[int, list[dict]]] = {}
        self._problems: tuple[int, dict[int, str]] = (-1, {})

    def group_of(self, i: int) -> int:
        return int(np.searchsorted(self._starts, i, side="right")) - 1

    def get(self, i: int, columns: tuple[str, ...] = ("images", "texts")) -> dict:
        """Row i (only these columns); the last row group read for each set of columns is kept."""
        k = self.group_of(i)
        hit = self._cached.get(columns)
        if hit is None or hit[0] != k:
            shard, g, _ = self.groups[k]
            hit = self._cached[columns] = (k, pq.ParquetFile(shard).read_row_group(g, columns=list(columns)).to_pylist())
        return hit[1][i - self.groups[k][2]]

    def problem(self, i: int) -> str | None:
        """Why a loader cannot use row i (docsynth.dataset.rowcheck), or None."""
        k = self.group_of(i)
        if self._problems[0] != k:
            shard, g, _ = self.groups[k]
            self._problems = (k, row_problems(pq.ParquetFile(shard).read_row_group(g, columns=["images", "texts"])))
        return self._problems[1].get(i - self.groups[k][2])


def source_key(source: str | None) -> str:
    return (source or "").split(" ", 1)[0]


def samples(path: Path, index: int = 0, source: str | None = None, seed: int | None = None) -> Iterator[Item]:
    """The dataset's samples from `index` on (in a seeded order with seed), of one source if given."""
    rows = Rows(path)
    if not rows.total:
        raise DocsynthError(f"{path} holds no samples")
    if not 0 <= index < rows.total:
        raise DocsynthError(f"--index {index} is out of range: {path} holds {rows.total:,} samples (0..{rows.total - 1})")
    order = Permutation(rows.total, seed) if seed is not None else None
    for k in range(index, rows.total):
        i = int(order(np.array([k]))[0]) if order is not None else k
        if source is not None:
            texts = rows.get(i, ("texts",))["texts"]
            src = texts[0]["source"] if texts else ""
            if source_key(src) != source and source not in (src or ""):
                continue
        r = rows.get(i)
        texts, why = r["texts"] or [], rows.problem(i)
        src = texts[0]["source"] if texts else ""
        yield Item(i, rows.total, [im["bytes"] for im in r["images"] or [] if im and im["bytes"]],
                   [(t["user"], t["assistant"]) for t in texts], src or "",
                   unusable=why)


def rejects(run: Path, index: int = 0, source: str | None = None) -> Iterator[Item]:
    """A run's rejects (ingest, generate, filter) with their reasons, and the sample's page images
    where the run still has them."""
    records = [{"stage": stage, **r} for stage, r in read_rejects(run)]
    if source is not None:
        records = [r for r in records if source in str(r.get("source", ""))]
    if not records:
        raise DocsynthError(f"{run} has no rejects" + (f" from a source matching '{source}'" if source else "")
                            + f" ({', '.join(REJECT_FILES.values())})")
    images = _candidate_images(run, {r["sample_id"] for r in records if r.get("sample_id")})
    for i, r in enumerate(records[index:], start=index):
        pairs = [(r["question"], r["answer"])] if "question" in r else []
        details = {k: v for k, v in r.items() if k not in ("question", "answer", "reason", "raw", "source")}
        if r.get("raw"):
            details["model output"] = str(r["raw"])[:400]
        yield Item(i, len(records), images.get(r.get("sample_id"), []), pairs, str(r.get("source", "")),
                   reason=r.get("reason", "?"), details=details)


def _candidate_images(run: Path, ids: set[str]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for shard in TaskStore.of(run, "generate").finished_shards() if ids else []:
        t = pq.read_table(shard, columns=["sample_id"])
        hits = [i for i, s in enumerate(t.column("sample_id").to_pylist()) if s in ids]
        if hits:
            rows = pq.read_table(shard, columns=["sample_id", "images"]).take(hits).to_pylist()
            out.update({r["sample_id"]: r["images"] for r in rows})
    return out


# ----- drawing images ----------------------------------------------------------------------------
def describe(data: bytes) -> str:
    size = image_size(data)
    fmt = "JPEG" if data[:2] == b"\xff\xd8" else "PNG" if data[:4] == b"\x89PNG" else "image"
    return f"{fmt} {size[0]}x{size[1]}, {len(data) / 1024:,.0f} KB" if size else f"unreadable image, {len(data):,} bytes"


def _fit(data: bytes, cols: int, rows: int, cell_aspect: float) -> Image.Image:
    """The image scaled to fit cols x rows cells (cell height / width = cell_aspect pixels)."""
    im = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = im.size
    scale = min(cols / w, rows * cell_aspect / h)
    return im.resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BILINEAR)


def halfblock(data: bytes, cols: int = 60, rows: int = 30) -> str:
    """ANSI 24-bit colour: each cell is '▀', its foreground the upper pixel, its background the lower."""
    px = np.asarray(_fit(data, cols, rows, 2.0))
    if px.shape[0] % 2:
        px = np.vstack([px, np.zeros((1, px.shape[1], 3), dtype=px.dtype)])
    lines = []
    for y in range(0, px.shape[0], 2):
        top, bottom = px[y], px[y + 1]
        lines.append("".join(f"\x1b[38;2;{a[0]};{a[1]};{a[2]}m\x1b[48;2;{b[0]};{b[1]};{b[2]}m▀"
                             for a, b in zip(top.tolist(), bottom.tolist())) + "\x1b[0m")
    return "\n".join(lines)


def kitty(data: bytes, cols: int = 60, rows: int = 30) -> str:
    """The Kitty graphics protocol: the image as PNG, shown in cols x rows cells."""
    im = _fit(data, cols * 10, rows * 20, 2.0)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    payload = base64.standard_b64encode(buf.getvalue()).decode()
    chunks = [payload[i:i + 4096] for i in range(0, len(payload), 4096)]
    out = []
    for i, c in enumerate(chunks):
        keys = f"a=T,f=100,c={cols},r={rows}," if i == 0 else ""
        out.append(f"\x1b_G{keys}m={int(i < len(chunks) - 1)};{c}\x1b\\")
    return "".join(out) + "\n"


def sixel(data: bytes, cols: int = 60, rows: int = 30, colors: int = 64) -> str:
    """Sixel graphics: the image in at most `colors` colours, six pixel rows per band."""
    im = _fit(data, cols * 10, rows * 20, 2.0).quantize(colors)
    px = np.asarray(im)
    pal = np.array(im.getpalette()[: 3 * colors]).reshape(-1, 3)
    h, w = px.shape
    out = ["\x1bPq", f'"1;1;{w};{h}']
    out += [f"#{i};2;{r * 100 // 255};{g * 100 // 255};{b * 100 // 255}" for i, (r, g, b) in enumerate(pal)]
    for y in range(0, h, 6):
        band = px[y:y + 6]
        bands = []
        for c in np.unique(band):
            bits = sum(((band[k] == c).astype(np.uint8) << k) for k in range(band.shape[0]))
            text = "".join(chr(63 + int(b)) for b in bits)
            text = re.sub(r"(.)\1{3,}", lambda m: f"!{len(m.group(0))}{m.group(1)}", text)
            bands.append(f"#{c}{text}")
        out.append("$".join(bands) + "-")
    return "".join(out) + "\x1b\\\n"


def terminal_graphics() -> str:
    """What the terminal on stdout can draw: kitty, sixel, or halfblock (any 24-bit colour terminal)."""
    env = os.environ
    if env.get("KITTY_WINDOW_ID") or env.get("TERM") == "xterm-kitty" or env.get("TERM_PROGRAM") in ("WezTerm", "ghostty"):
        return "kitty"
    if env.get("TMUX") or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return "halfblock"  # tmux passes neither protocol through by default
    try:  # ask the terminal: primary device attributes; 4 in the answer means Sixel
        import termios
        import tty
        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            sys.stdout.write("\x1b[c")
            sys.stdout.flush()
            answer = ""
            while select.select([fd], [], [], 0.2)[0]:
                answer += os.read(fd, 64).decode(errors="replace")
                if answer.endswith("c"):
                    break
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        if re.search(r"\x1b\[\?[\d;]*\b4\b[\d;]*c", answer):
            return "sixel"
    except (OSError, ImportError, ValueError):
        pass
    return "halfblock"


DRAW = {"halfblock": halfblock, "kitty": kitty, "sixel": sixel}
