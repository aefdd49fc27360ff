"""`docsynth export DIR --format messages --out DIR2`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from docsynth.cli import common
from docsynth import api
from docsynth.api.show import FORMATS


def export(
    path: Annotated[Path, typer.Argument(help="A dataset, mixture or run directory, or a Cauldron folder of data/*.parquet.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the view is written (data/ and README.md).")],
    fmt: Annotated[str, typer.Option("--format", help=f"The view: {', '.join(FORMATS)}.")] = "messages",
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    strict: common.StrictOption = False,
) -> None:
    """Write a dataset in another view, for training code that wants it.

    messages: `images` and chat `messages` (the first user turn holds one {"type": "image"} part
    per image, then a user and an assistant turn per QA pair), the shape TRL's VLM SFTTrainer and
    Hugging Face chat templates take, with a card `datasets.load_dataset` reads. Streamed a row
    group at a time; the quality columns (ratings per turn, verified) are kept. finevision:
    images, texts of user/assistant, source (concatenates with FineVision). A row a loader would
    fail on (no images or turns, an image that is not one) is left out and named; a dataset whose
    shards do not hold the rows its card says is an error.
    """
    with common.failures():
        s = api.export(path, out, fmt)
    common.report(s, json_out, lambda: common.out.print(
        f"{s.rows:,} rows -> {out} ({len(s.shards)} shards, {s.bytes / 1e6:,.1f} MB, {s.format} view)"
        + (f"; {s.rejects:,} rows left out (no images or turns, or a broken image; the first are named above)"
           if s.rejects else ""), highlight=False), strict=strict)
