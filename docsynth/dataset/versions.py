"""Publishing a dataset or mixture so that a reader sees the old version or the new one, never a
mix, however it reads: through the card, `load_dataset("parquet", data_dir=OUT)`, or a glob of
OUT/data/*.parquet.

    OUT/README.md -> data/../README.md                      the card of the live version
    OUT/data      -> .v-VVVVVVVV/data                       the live version's shards
    OUT/.v-VVVVVVVV/README.md                               its card
    OUT/.v-VVVVVVVV/data/train-XXXXX-of-NNNNN-VVVVVVVV.parquet

A version lives in a hidden folder of its own (readers that glob skip hidden folders: datasets
does). OUT/data is a symbolic link to it, and the switch from one version to the next is one
rename of a new link over OUT/data, so the card and the shards change together. The card link
is fixed: the kernel resolves `data/..` after following `data`, so it always lands on the live
version's card. The old version's folder is removed after the switch; a killed write's, or an
old one a kill kept, when the next write starts.

Shard names are the Hub's (`train-00000-of-00002`, then the version, which the Hub's and
datasets' split patterns allow), so `load_dataset("parquet", data_dir=OUT)` infers the train
split; the version in each name lets a push to the Hub or object storage upload a new version
beside the old one before the card names it.

Before this, a version's shards sat beside the last one's in one data/ folder as
train-VVVVVVVV-00000-of-00002.parquet: the card was right, but datasets read `train-VVVVVVVV` as
a split name and refused the folder, and a kill between the card and the removal left a folder
of both versions (18 rows for a 12-row dataset). A dataset written that way is moved into this
layout by the next write, without a moment where its card names what is not there.
"""

from __future__ import annotations

import glob
import os
from fnmatch import fnmatch
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from docsynth.core.errors import DocsynthError
from docsynth.core.files import atomic_write_text


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


LIVE = "data"  # the link readers read; the folder inside a version
CARD = "README.md"
CARD_LINK = f"{LIVE}/../{CARD}"
PREFIX = ".v-"  # a version's folder: PREFIX + 8 hex digits
STAGING = f"{PREFIX}next"  # the version being written
LEGACY = f"{PREFIX}legacy"  # a dataset of the old layout, moved in


@dataclass(frozen=True, slots=True)
class Version:
    """A version written and not yet live: its folder, its shards there, and the card's pattern."""
    folder: Path
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


def live_folder(out: Path) -> Path | None:
    """The live version's folder: where OUT/data points (None for no version, or the old layout)."""
    try:
        target = Path(os.readlink(out / LIVE))
    except OSError:
        return None
    return out / target.parts[0] if target.parts and target.parts[0].startswith(PREFIX) else None


def begin(out: Path) -> Path:
    """Ready OUT for a new version (the caller holds its lock): a dataset of the old layout is moved
    into this one, what a failed or killed write left is removed. Returns the empty, hidden folder
    the new version's parts are written to (`.part-XXXXX.parquet`; see stage_version)."""
    out.mkdir(parents=True, exist_ok=True)
    _adopt(out)
    clear_leftovers(out)
    staging = out / STAGING / LIVE
    staging.mkdir(parents=True)
    return staging


def clear_leftovers(out: Path) -> None:
    """Remove from OUT every version folder but the live one (a killed write's, an old version a
    kill kept, the one being written), and from the live one what the card does not name."""
    live = live_folder(out)
    for d in out.glob(f"{PREFIX}*"):
        if d != live:
            shutil.rmtree(d, ignore_errors=True)
    for f in out.glob(".*.next"):  # a link _link made and a kill kept from its rename
        f.unlink(missing_ok=True)
    data = out / LIVE
    if not data.is_dir():
        return
    names = live_shards(out)
    for f in [*data.glob(".*.tmp"), *data.glob(".part-*.parquet"), *(live.glob(".*.tmp") if live else [])]:
        f.unlink(missing_ok=True)
    if names is not None:  # shards of an old-layout folder that its card does not name
        for f in {f for f in data.glob("train-*.parquet")} - {data / f.name for f in names}:
            f.unlink(missing_ok=True)


def stage_version(out: Path, parts: list[Path], key: str) -> Version:
    """Name the parts in the folder `begin` gave as the shards of a new version, named from key
    (so the same inputs give the same names) unless the live version has that name. No reader
    sees them until `switch`."""
    live = live_folder(out)
    version = key[8:16] if live is not None and live.name == f"{PREFIX}{key[:8]}" else key[:8]
    for i, part in enumerate(parts):
        part.rename(part.with_name(f"train-{i:05d}-of-{len(parts):05d}-{version}.parquet"))
    folder = out / f"{PREFIX}{version}"
    (out / STAGING).rename(folder)
    shards = [folder / LIVE / f"train-{i:05d}-of-{len(parts):05d}-{version}.parquet" for i in range(len(parts))]
    return Version(folder, shards, f"{LIVE}/train-*-{version}.parquet")


def switch(out: Path, card: str, version: Version) -> None:
    """Make `version` the live one: its card is written into its folder, then one rename of a new
    link over OUT/data switches readers to it; every other version's folder is then removed."""
    atomic_write_text(version.folder / CARD, card)
    _link(out / LIVE, f"{version.folder.name}/{LIVE}")
    _link(out / CARD, CARD_LINK, replace=False)
    for d in out.glob(f"{PREFIX}*"):
        if d != version.folder:
            shutil.rmtree(d, ignore_errors=True)


def _adopt(out: Path) -> None:
    """Move a dataset of the old layout (OUT/data a folder, OUT/README.md a file) into a version
    folder of its own, and make the card link. The one moment a reader can miss the data is
    between moving data/ and linking it (a rename cannot put a link over a folder); a kill there
    is mended here, at the next start."""
    data, card, legacy = out / LIVE, out / CARD, out / LEGACY
    if data.is_dir() and not data.is_symlink():
        foreign = sorted(f.name for f in data.iterdir() if not (f.name.startswith(".") or fnmatch(f.name, "train-*.parquet")))
        if foreign:  # not a folder docsynth wrote: nothing of it is moved or removed
            raise DocsynthError(f"{data} holds files docsynth did not write ({', '.join(foreign[:5])}): "
                                "give --out a new or docsynth-written directory")
        shutil.rmtree(legacy, ignore_errors=True)
        legacy.mkdir()
        if card.is_file() and not card.is_symlink():
            shutil.copyfile(card, legacy / CARD)
        os.rename(data, legacy / LIVE)
    if not data.is_symlink() and (legacy / LIVE).is_dir():
        _link(data, f"{LEGACY}/{LIVE}")
    if not card.is_symlink() and (not card.exists() or (data / ".." / CARD).is_file()):
        _link(card, CARD_LINK)


def _link(path: Path, target: str, replace: bool = True) -> None:
    """Make path a symbolic link to target in one rename (over what path was)."""
    if path.is_symlink() and (not replace or os.readlink(path) == target):
        return
    tmp = path.with_name(f".{path.name}.next")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)
