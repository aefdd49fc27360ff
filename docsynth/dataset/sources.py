"""Sources of a mixture: where their rows are, how many, in what schema, and reading them in order.

A source is one of
- a docsynth dataset, or any folder with a Hub-style card (README.md whose YAML header lists
  `configs` with `data_files`), such as a local copy of The Cauldron;
- a folder of parquet shards (searched recursively), one parquet file, or a glob;
- a `datasets` save_to_disk folder (state.json; or dataset_dict.json with one folder per split);
- any of the parquet ones at a URL (`s3://`, `gs://`, `hf://datasets/...`, `https://`), read by
  ranges through fsspec (docsynth.core.remote): footers first, then the row groups.

Row counts come from parquet footers (or Arrow batch headers), never from reading the data.
Rows are read row group by row group (Arrow record batch by batch), in a fixed file order.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from docsynth.dataset.cauldron import SCHEMA
from docsynth.dataset.versions import card_rows
from docsynth.core.errors import DocsynthError
from docsynth.config.mixture import SourceConfig
from docsynth.core.remote import filesystem, open_stream, retried, shown
# Source batches of up to 32 MB: a row group of images as datasets writes it stays one batch
# (mix median 2.47 -> 2.34 s against 64 MB batches read 4 ahead; bench/README.md).
READ_BATCH_BYTES = 32_000_000


class SourceError(DocsynthError):
    """A source that cannot be used as configured; the message names the source."""


@dataclass(slots=True)
class Unit:
    """A contiguous run of rows the reader fetches at once: a parquet row group or an Arrow batch."""

    file: int
    index: int
    start: int  # first row, counted over the whole source
    rows: int
    bytes: int  # uncompressed, as the footer says


@dataclass(slots=True)
class Source:
    """An opened source: its files, schema and units; rows are read with `read`."""

    cfg: SourceConfig
    kind: str
    root: Path | str
    files: list[Path | str]  # URLs for a remote source
    schema: pa.Schema
    units: list[Unit]

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def num_rows(self) -> int:
        return sum(u.rows for u in self.units)

    def read(self, units: list[Unit], columns: list[str], batch_bytes: int = READ_BATCH_BYTES) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(first row, batch) for the given units, in order; parquet units are cut into batches of
        about batch_bytes so a source written as one huge row group is still read in bounded memory.
        32 MB keeps a row group of images as `datasets` writes them (100 rows, 15-30 MB) whole:
        cutting it in two doubles the work per batch downstream (mix: 0.13-0.2 s of 2.4 s). A
        row group that fits is read whole (read_row_group decodes it for about 7 % less CPU
        than a batch reader)."""
        by_file: dict[int, list[Unit]] = {}
        for u in units:
            by_file.setdefault(u.file, []).append(u)
        for fi in sorted(by_file):
            path = self.files[fi]
            try:
                if _is_arrow(path):
                    wanted = {u.index: u for u in by_file[fi]}
                    with pa.memory_map(str(path)) as mm:
                        for i, batch in enumerate(pa.ipc.open_stream(mm)):
                            if i in wanted:
                                yield wanted[i].start, batch.select(columns)
                    continue
                pf = pq.ParquetFile(_opened(path), buffer_size=1 << 20, pre_buffer=False)
                for u in sorted(by_file[fi], key=lambda u: u.index):
                    size = max(1, min(u.rows, int(batch_bytes * u.rows / max(u.bytes, 1))))
                    start = u.start
                    batches = (pf.read_row_group(u.index, columns=columns).to_batches() if size >= u.rows else
                               pf.iter_batches(batch_size=size, row_groups=[u.index], columns=columns))
                    for batch in batches:
                        yield start, batch
                        start += batch.num_rows
            except (OSError, pa.ArrowException) as e:
                raise SourceError(f"source '{self.name}': cannot read {_shown(path)}: {e}") from None
            except DocsynthError as e:  # a remote source: gone, refused, or down past its retries
                raise SourceError(f"source '{self.name}': {e}") from None


def _is_arrow(path: Path | str) -> bool:
    return str(path).endswith(".arrow")


def _opened(path: Path | str):
    """What pyarrow reads: a local path, or a remote object's file (read in 8 MB blocks)."""
    return open_stream(path) if isinstance(path, str) else path


def _shown(path: Path | str) -> str:
    return shown(path) if isinstance(path, str) else str(path)


def open_source(cfg: SourceConfig) -> Source:
    """Find a source's files and read their footers; SourceError says what is wrong and where."""
    try:
        root, kind, files = _locate_remote(cfg) if isinstance(cfg.path, str) else _locate(cfg)
    except SourceError:
        raise
    except DocsynthError as e:
        raise SourceError(f"source '{cfg.name}': {e}") from None
    if not files:
        raise SourceError(f"source '{cfg.name}': no parquet or arrow files in {_shown(cfg.path)}"
                          + (f" for config '{cfg.config}'" if cfg.config else "") + f" (split '{cfg.split}')")
    units: list[Unit] = []
    schema = None
    start = 0
    for fi, path in enumerate(files):
        try:
            if _is_arrow(path):
                with pa.memory_map(str(path)) as mm:
                    reader = pa.ipc.open_stream(mm)
                    file_schema = reader.schema
                    for i, batch in enumerate(reader):  # zero-copy: only batch headers are read
                        units.append(Unit(fi, i, start, batch.num_rows, batch.nbytes))
                        start += batch.num_rows
            else:
                meta = pq.ParquetFile(_opened(path)).metadata
                file_schema = meta.schema.to_arrow_schema()
                for i in range(meta.num_row_groups):
                    rg = meta.row_group(i)
                    units.append(Unit(fi, i, start, rg.num_rows, rg.total_byte_size))
                    start += rg.num_rows
        except (OSError, pa.ArrowException) as e:
            raise SourceError(f"source '{cfg.name}': {_shown(path)} is not a readable "
                              f"{'Arrow' if _is_arrow(path) else 'parquet'} file: {e}") from None
        except DocsynthError as e:
            raise SourceError(f"source '{cfg.name}': {e}") from None
        if schema is None:
            schema = file_schema
        elif not file_schema.remove_metadata().equals(schema.remove_metadata()):
            raise SourceError(f"source '{cfg.name}': {_shown(path)} has a different schema from {_shown(files[0])}: "
                              f"{_short(file_schema)} vs {_short(schema)}")
    said = card_rows(root) if kind == "hub" and isinstance(root, Path) and not cfg.config and cfg.split == "train" else None
    if said is not None and said != start:  # read the same way as every reader (docsynth.dataset.cauldron)
        raise SourceError(f"source '{cfg.name}': the card of {_shown(root)} says {said:,} rows, but its {len(files)} "
                          f"shards hold {start:,} (a shard is missing, cut short or replaced)")
    return Source(cfg, kind, root, files, schema, units)


def _locate(cfg: SourceConfig) -> tuple[Path, str, list[Path]]:
    p = cfg.path
    if any(c in str(p) for c in "*?["):
        files = sorted(Path(f) for f in glob.glob(str(p), recursive=True) if f.endswith((".parquet", ".arrow")))
        return Path(str(p).split("*")[0]).parent, "glob", files
    if p.is_file():
        return p.parent, "file", [p]
    if not p.is_dir():
        raise SourceError(f"source '{cfg.name}': {p} does not exist")
    if (p / "dataset_dict.json").exists():
        if not (p / cfg.split / "state.json").exists():
            splits = json.loads((p / "dataset_dict.json").read_text()).get("splits", [])
            raise SourceError(f"source '{cfg.name}': {p} has no split '{cfg.split}' (splits: {', '.join(splits)})")
        p = p / cfg.split
    if (p / "state.json").exists():
        try:
            state = json.loads((p / "state.json").read_text())
            return p, "save_to_disk", [p / f["filename"] for f in state["_data_files"]]
        except (ValueError, KeyError, TypeError) as e:
            raise SourceError(f"source '{cfg.name}': {p / 'state.json'} is not a save_to_disk state: {e}") from None
    configs = _card_configs(p, cfg.name)
    if configs:
        return p, "hub", _config_files(p, cfg, configs)
    base = p / cfg.config if cfg.config else p
    files = sorted(f for f in base.rglob("*") if f.suffix in (".parquet", ".arrow") and not f.name.startswith("."))
    split_files = [f for f in files if f.name.startswith(f"{cfg.split}-") or f"/{cfg.split}/" in f.as_posix()]
    return p, "parquet", split_files or files


def _locate_remote(cfg: SourceConfig) -> tuple[str, str, list[str]]:
    """A source at a URL: a glob, one parquet file, a folder of parquet shards, or a Hub-style
    folder with a card (save_to_disk folders are read locally only: their Arrow files are mapped)."""
    url = cfg.path
    fs, path = filesystem(url)
    scheme = url[:url.index("://") + 3]

    def urls(found) -> list[str]:
        return sorted(f if "://" in f else scheme + f for f in found if f.endswith((".parquet", ".arrow")))

    if any(c in path for c in "*?["):
        return url.split("*")[0].rsplit("/", 1)[0], "glob", urls(retried("listing", url, lambda: fs.glob(path)))
    if not retried("looking it up", url, lambda: fs.isdir(path)):
        retried("looking it up", url, lambda: fs.info(path))  # 404 or 403 named here
        return url.rsplit("/", 1)[0], "file", [url]
    names = retried("listing", url, lambda: fs.ls(path, detail=False))
    if any(n.rstrip("/").endswith(("state.json", "dataset_dict.json")) for n in names):
        raise SourceError(f"source '{cfg.name}': {shown(url)} is a save_to_disk dataset, which is read locally only "
                          "(its Arrow files are memory-mapped); copy it here, or push it as parquet")
    card = next((n for n in names if n.rstrip("/").endswith("README.md")), None)
    configs = _header_configs(retried("reading", url, lambda: fs.cat_file(card)).decode(errors="replace"),
                              f"{shown(url)}/README.md", cfg.name) if card else []
    if configs:
        patterns = _split_patterns(url, cfg, configs)
        return url, "hub", urls({f for pat in patterns for f in fs.glob(f"{path.rstrip('/')}/{pat}")})
    base = f"{path.rstrip('/')}/{cfg.config}" if cfg.config else path
    files = urls(retried("listing", url, lambda: fs.find(base)))
    split_files = [f for f in files if f.rsplit("/", 1)[-1].startswith(f"{cfg.split}-") or f"/{cfg.split}/" in f]
    return url, "parquet", split_files or files


def _card_configs(p: Path, name: str) -> list[dict]:
    card = p / "README.md"
    if not card.exists():
        return []
    return _header_configs(card.read_text(errors="replace"), str(card), name)


def _header_configs(text: str, card: str, name: str) -> list[dict]:
    """The `configs` a dataset card's YAML header lists ([] if none)."""
    if not text.startswith("---"):
        return []
    try:
        header = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as e:
        raise SourceError(f"source '{name}': the YAML header of {card} does not parse: {e}") from None
    configs = header.get("configs") if isinstance(header, dict) else None
    return configs if isinstance(configs, list) else []


def _config_files(p: Path, cfg: SourceConfig, configs: list[dict]) -> list[Path]:
    patterns = _split_patterns(p, cfg, configs)
    files = {Path(f) for pat in patterns for f in glob.glob(str(p / pat), recursive=True)}
    return sorted(f for f in files if f.suffix in (".parquet", ".arrow"))


def _split_patterns(p: Path | str, cfg: SourceConfig, configs: list[dict]) -> list[str]:
    """The data_files patterns of the source's config and split, from a card's configs."""
    p = _shown(p)
    names = [c.get("config_name", "default") for c in configs]
    if cfg.config is None and len(configs) > 1:
        raise SourceError(f"source '{cfg.name}': {p} has {len(configs)} configs; name one with `config:` "
                          f"({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")
    want = cfg.config or names[0]
    if want not in names:
        raise SourceError(f"source '{cfg.name}': {p} has no config '{want}' (configs: {', '.join(names[:12])})")
    data_files = configs[names.index(want)].get("data_files", [])
    if isinstance(data_files, (str, list)) and not (isinstance(data_files, list) and data_files and isinstance(data_files[0], dict)):
        patterns = {"train": [data_files] if isinstance(data_files, str) else data_files}
    else:
        patterns = {}
        for d in data_files:
            paths = d.get("path", [])
            patterns.setdefault(d.get("split", "train"), []).extend([paths] if isinstance(paths, str) else paths)
    if cfg.split not in patterns:
        raise SourceError(f"source '{cfg.name}': config '{want}' of {p} has no split '{cfg.split}' "
                          f"(splits: {', '.join(patterns)})")
    return patterns[cfg.split]


def _short(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name}: {f.type}" for f in schema)[:300]


def as_cauldron(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A Cauldron-schema batch (other columns dropped, large/view types and field order normalised)."""
    batch = batch.select(["images", "texts"])
    if batch.schema.remove_metadata().equals(SCHEMA.remove_metadata()):
        return pa.RecordBatch.from_arrays(batch.columns, schema=SCHEMA)
    return batch.cast(SCHEMA)
