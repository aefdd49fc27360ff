"""`docsynth export DIR --format messages|finevision --out DIR2`: a dataset or mixture in another
view (docsynth.dataset.views), streamed a row group at a time, one output shard per input shard,
with a card whose configs and features `datasets.load_dataset` and the Hub read.

    DIR2/data/train-XXXXX-of-NNNNN.parquet    the view's columns (and the quality columns)
    DIR2/README.md                            the card, written last
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from docsynth.core.summary import Summary
from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write, atomic_write_text
from docsynth.core.lock import locked
from docsynth.dataset.cauldron import card_front, card_header, dataset_shards
from docsynth.dataset.rowcheck import RowCheck
from docsynth.dataset.views import VIEWS, View

log = logging.getLogger(__name__)

FORMATS = ("messages", "finevision")


@dataclass(slots=True)
class ExportSummary(Summary):
    out_dir: str
    format: str
    rows: int = 0
    shards: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    rejects: int = 0  # rows left out: a training loader would fail on them (docsynth.dataset.rowcheck)
    left_out: list[str] = field(default_factory=list)  # the first of them: "SHARD row N: why"

    @property
    def produced(self) -> bool:
        return self.rows > 0


def export(src: Path, out: Path, fmt: str = "messages") -> ExportSummary:
    """Write src (a dataset, mixture or run directory, or a Cauldron folder of data/*.parquet) to out
    in the given view; DocsynthError names what is wrong (an unknown format, out inside src)."""
    if fmt not in FORMATS:
        raise DocsynthError(f"--format: no format '{fmt}' (formats: {', '.join(FORMATS)})")
    t0 = time.perf_counter()
    shards = dataset_shards(src)
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise DocsynthError(f"the output {out} is inside the dataset {src}: write it elsewhere")
    s = ExportSummary(str(out), fmt)
    with locked(out):
        (out / "data").mkdir(parents=True, exist_ok=True)
        n = len(shards)
        names = [f"train-{i:05d}-of-{n:05d}.parquet" for i in range(n)]
        for old in (out / "data").glob("train-*.parquet"):  # an earlier export's, of another count
            if old.name not in names:
                old.unlink()
        check = RowCheck()
        for shard, name in zip(shards, names):
            s.rows += _convert(shard, out / "data" / name, VIEWS[fmt], check)
            s.shards.append(str(out / "data" / name))
        s.rejects, s.left_out = check.count, check.named
        s.bytes = sum((out / "data" / x).stat().st_size for x in names)
        names = pq.read_schema(out / "data" / names[0]).names if names else []
        header = card_header("other", f"{src.resolve().name} ({fmt})", s.rows, s.bytes, [fmt],
                             "data/train-*.parquet", VIEWS[fmt].card_features(names))
        atomic_write_text(out / "README.md", card_front(header) + _body(src, s, VIEWS[fmt]))
    s.seconds = round(time.perf_counter() - t0, 3)
    return s


def _convert(shard: Path, dest: Path, view: View, check: RowCheck) -> int:
    """One shard in the view, row group by row group (bounded memory); rows a loader would fail on
    (no images or turns, an image that is not one) are left out, counted and named in check."""
    pf = pq.ParquetFile(shard)
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = None
        first = 0
        try:
            for g in range(pf.num_row_groups):
                group = pf.read_row_group(g)
                named = len(check.named)
                bad = check.check(shard, first, group)
                for line in check.named[named:]:  # "SHARD row N: why"
                    log.warning("%s/%s left out: %s", shard.parent, *line.split(": ", 1))
                first += group.num_rows
                if bad:
                    keep = np.ones(group.num_rows, dtype=bool)
                    keep[list(bad)] = False
                    group = group.filter(pa.array(keep))
                table = view.table(group)
                writer = writer or pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)
                rows += table.num_rows
            if writer is None:  # an empty shard: an empty file of the view's schema
                writer = pq.ParquetWriter(tmp, view.schema(pf.schema_arrow))
        finally:
            if writer is not None:
                writer.close()

    atomic_write(dest, write)
    return rows


def _body(src: Path, s: ExportSummary, view: View) -> str:
    use = ("# TRL: SFTTrainer(model, train_dataset=ds, processing_class=processor, ...)\n" if view.name == "messages" else
           "# beside FineVision: datasets.concatenate_datasets([ds, load_dataset(\"HuggingFaceM4/FineVision\", "
           "SUBSET, split=\"train\")])\n")
    return (f"\n# {src.resolve().name}, {view.name} view\n\n{s.rows:,} rows of `{src}` in {view.says}; `source` is "
            f"the source of the row. Made with `docsynth export --format {view.name}`.\n\n"
            "```python\nfrom datasets import load_dataset\nds = load_dataset(\"PATH_OR_REPO\", split=\"train\")\n"
            f"{use}```\n")
