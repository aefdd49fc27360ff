"""Publishing a dataset or mixture so that a reader sees the old version or the new one, never a
mix, however it reads: through the card, `load_dataset("parquet", data_dir=OUT)`, a glob of
OUT/data/*.parquet, or a tool that walks the folder (`hf upload`, rsync, find).

    OUT/README.md -> data/.README.md                            the card: a fixed link
    OUT/data/.README.md                                         the live version's card
    OUT/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet              the live version's shards

A new version, card and shards, is written in a hidden folder OUT/.data-next/ (readers that
glob skip hidden paths: datasets does), then swapped with OUT/data in one step (Linux
renameat2 RENAME_EXCHANGE), so the card and the shards change together; the old version, now
in .data-next, is then removed. A kill at any step leaves OUT/data whole: the old version before
the swap, the new one after it; the next write removes what a kill left.

Where the filesystem cannot swap (NFS, not Linux) it is two renames, data -> .data-old and
.data-next -> data: between them a reader finds no data (an error, never a mix) and the next
start puts the old version back if a kill fell there.

Shard names are the Hub's (`train-00000-of-00002`, then the version, which the Hub's and
datasets' split patterns allow), so `load_dataset("parquet", data_dir=OUT)` infers the train
split; the version in each name lets a push to the Hub or object storage upload a new version
beside the old one before the card names it.

Before this, a version's shards sat beside the last one's in one data/ folder as
train-VVVVVVVV-00000-of-00002.parquet: the card was right, but datasets read `train-VVVVVVVV` as
a split name and refused the folder, and a kill between the card and the removal left a folder
of both versions (18 rows for a 12-row dataset). A dataset written that way (README.md a file)
gets its card link at the next write, before anything else changes.
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import yaml

from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text, exchange


def split_card(card: str) -> tuple[dict, str]:
    """A card's YAML header (as a dict; {} if it has none or it does not parse) and its body."""
    if card.startswith("---"):
        parts = card.split("---", 2)
        if len(parts) == 3:
            try:
                header = yaml.safe_load(parts[1])
            except yaml.YAMLError:
                header = None
            return header if isinstance(header, dict) else {}, parts[2].lstrip("\n")
    return {}, card


def card_patterns(out: Path) -> list[str] | None:
    """The train split's data_files patterns of the card's only config, or None where the card
    does not say (no card, no header, several configs: then nothing is a docsynth version)."""
    try:
        header, _ = split_card((out / "README.md").read_text(errors="replace"))
    except OSError:
        return None
    return header_patterns(header)


def header_patterns(header: dict) -> list[str] | None:
    """card_patterns, of a card's parsed header."""
    configs = header.get("configs")
    if not isinstance(configs, list) or len(configs) != 1 or not isinstance(configs[0], dict):
        return None
    files = configs[0].get("data_files")
    if isinstance(files, str):
        return [files]
    patterns = []
    for d in files if isinstance(files, list) else []:
        paths = d.get("path", []) if isinstance(d, dict) and d.get("split", "train") == "train" else []
        patterns += [paths] if isinstance(paths, str) else [p for p in paths if isinstance(p, str)]
    return patterns or None


def card_rows(out: Path) -> int | None:
    """The rows the card of OUT says its train split has (dataset_info), or None where it does not say."""
    try:
        header, _ = split_card((out / "README.md").read_text(errors="replace"))
    except OSError:
        return None
    info = header.get("dataset_info")
    splits = info.get("splits") if isinstance(info, dict) else None
    rows = [s.get("num_examples") for s in splits or [] if isinstance(s, dict) and s.get("name", "train") == "train"]
    return rows[0] if len(rows) == 1 and isinstance(rows[0], int) and header_patterns(header) else None


LIVE = "data"
CARD = "README.md"
CARD_IN_DATA = ".README.md"  # hidden: a reader of data/ alone sees only shards
NEXT = ".data-next"  # the version being written; after the swap, the old one
OLD = ".data-old"  # the old version between the two renames where there is no swap
MARKER = ".docsynth-write.json"  # what made the live version (docsynth.write.stage.DatasetMarker); read by stats


@dataclass(frozen=True, slots=True)
class Version:
    """A version written and not yet live: its shards (in OUT/.data-next) and the card's pattern."""
    shards: list[Path]
    pattern: str

    @property
    def names(self) -> list[str]:
        """The shards' paths as readers see them once this version is live (data/...)."""
        return [f"{LIVE}/{p.name}" for p in self.shards]


def live_shards(out: Path) -> list[Path] | None:
    """The shards the card of OUT names, in order; None where it names none (see card_patterns).
    Hidden files (temporaries, parts) never match."""
    patterns = card_patterns(out)
    if patterns is None:
        return None
    found = {Path(f) for p in patterns if not Path(p).is_absolute() and ".." not in Path(p).parts
             for f in glob.glob(str(out / p)) if not Path(f).name.startswith(".")}
    return sorted(f for f in found if f.suffix == ".parquet")


def begin(out: Path) -> Path:
    """Ready OUT for a new version (the caller holds its lock): what a failed or killed write left
    is removed, and a dataset of the old layout gets its card link. Returns the empty, hidden
    folder the new version's parts are written to (`.part-XXXXX.parquet`; see stage_version)."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / LIVE
    if not data.exists() and (out / OLD).is_dir():  # killed between the two renames: the old one back
        os.rename(out / OLD, data)
    if data.is_dir():
        foreign = sorted(f.name for f in data.iterdir() if not (f.name.startswith(".") or fnmatch(f.name, "train-*.parquet")))
        if foreign:  # not a folder docsynth wrote: nothing of it is moved or removed
            raise DocsynthError(f"{data} holds files docsynth did not write ({', '.join(foreign[:5])}): "
                                "give --out a new or docsynth-written directory")
    clear_leftovers(out)
    card = out / CARD
    if card.is_file() and not card.is_symlink() and data.is_dir():  # the old layout: the same card, now linked
        atomic_write_text(data / CARD_IN_DATA, card.read_text())
    if not card.is_symlink() and (not card.exists() or (data / CARD_IN_DATA).is_file()):
        _link(card, f"{LIVE}/{CARD_IN_DATA}")
    staging = out / NEXT
    staging.mkdir()
    return staging


def clear_leftovers(out: Path) -> None:
    """Remove what a failed or killed write left: the version it was writing (or the old one a
    kill kept after the swap), and temporaries and parts in OUT/data."""
    shutil.rmtree(out / NEXT, ignore_errors=True)
    if (out / LIVE).is_dir():  # else OLD is the dataset: begin puts it back
        shutil.rmtree(out / OLD, ignore_errors=True)
    for f in out.glob(".*.next"):  # a link _link made and a kill kept from its rename
        f.unlink(missing_ok=True)
    data = out / LIVE
    for f in [*data.glob(".*.tmp"), *data.glob(".part-*.parquet")] if data.is_dir() else []:
        f.unlink(missing_ok=True)


def stage_version(out: Path, parts: list[Path], key: str) -> Version:
    """Name the parts in the folder `begin` gave as the shards of a new version, named from key
    (so the same inputs give the same names) unless the live version has that name. No reader
    sees them until `switch`."""
    taken = list((out / LIVE).glob(f"train-*-{key[:8]}.parquet")) if (out / LIVE).is_dir() else []
    version = key[8:16] if taken else key[:8]
    shards = []
    for i, part in enumerate(parts):
        shards.append(part.with_name(f"train-{i:05d}-of-{len(parts):05d}-{version}.parquet"))
        part.rename(shards[-1])
    return Version(shards, f"{LIVE}/train-*-{version}.parquet")


def switch(out: Path, card: str, version: Version) -> None:
    """Make `version` the live one: its card is written beside its shards, then the folder is
    swapped with OUT/data in one step; the old version is then removed."""
    data, staging = out / LIVE, out / NEXT
    atomic_write_text(staging / CARD_IN_DATA, card)
    if not data.exists():
        os.rename(staging, data)
    elif not exchange(staging, data):  # two renames: a reader between them finds no data
        os.rename(data, out / OLD)
        os.rename(staging, data)
        staging = out / OLD
    _link(out / CARD, f"{LIVE}/{CARD_IN_DATA}", replace=False)
    shutil.rmtree(staging, ignore_errors=True)


def _link(path: Path, target: str, replace: bool = True) -> None:
    """Make path a symbolic link to target in one rename (over what path was)."""
    if path.is_symlink() and (not replace or os.readlink(path) == target):
        return
    tmp = path.with_name(f".{path.name}.next")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)
