"""Publishing a dataset or mixture so that a reader sees the old version or the new one, never a mix.

    OUT/README.md                                  the card: the one pointer readers follow
    OUT/data/train-VVVVVVVV-XXXXX-of-NNNNN.parquet  shards of version VVVVVVVV (8 hex digits)

The card's `configs` name the live version's shards (`data/train-VVVVVVVV-*`), and that is what
`datasets.load_dataset(OUT)`, the Hub and every docsynth reader follow. A new version's shards
are written under names no card names yet, then the card is replaced in one rename (the switch),
then the old version's shards are removed. A kill at any step leaves a card whose shards are all
there: before the switch the old dataset, after it the new one. Shards that no card names (a
killed write's, or an old version a kill kept) are removed when the next write starts.

Before this, shards had fixed names and the old ones were deleted before the new ones were
renamed in: a kill -9 between renames left 4 of 8 rows, and load_dataset failed with
NonMatchingSplitsSizesError until a rerun.
"""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

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


def live_shards(out: Path) -> list[Path] | None:
    """The shards the card of OUT names, in order; None where it names none (see card_patterns).
    Hidden files (temporaries, parts) never match."""
    patterns = card_patterns(out)
    if patterns is None:
        return None
    found = {Path(f) for p in patterns if not Path(p).is_absolute() and ".." not in Path(p).parts
             for f in glob.glob(str(out / p)) if not Path(f).name.startswith(".")}
    return sorted(f for f in found if f.suffix == ".parquet")


def clear_leftovers(out: Path) -> None:
    """Remove from OUT/data what a write that failed or was killed left: temporaries, parts, and
    shards the card does not name. With no card naming shards, only temporaries and parts go."""
    data = out / "data"
    live = live_shards(out)
    for f in [*data.glob(".*.tmp"), *data.glob(".part-*.parquet")]:
        f.unlink(missing_ok=True)
    if live is not None:
        for f in set(data.glob("train-*.parquet")) - set(live):
            f.unlink(missing_ok=True)


def stage_version(out: Path, parts: list[Path], key: str) -> tuple[list[Path], str]:
    """Rename finished parts to the shard names of a new version, named from key (so the same
    inputs give the same names) unless the live version has that name; returns the shards and the
    card's data_files pattern for them. No reader sees them until `switch`."""
    data = out / "data"
    version = key[:8] if not list(data.glob(f"train-{key[:8]}-*")) else key[8:16]
    final = [data / f"train-{version}-{i:05d}-of-{len(parts):05d}.parquet" for i in range(len(parts))]
    for part, dest in zip(parts, final):
        part.rename(dest)
    return final, f"data/train-{version}-*"


def switch(out: Path, card: str, shards: list[Path]) -> None:
    """Make the version of `shards` the live one: write its card (one rename), then remove every
    other shard of OUT/data."""
    atomic_write_text(out / "README.md", card)
    keep = set(shards)
    for f in (out / "data").glob("train-*.parquet"):
        if f not in keep:
            f.unlink(missing_ok=True)
