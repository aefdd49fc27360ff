"""`docsynth preview PATH`."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from docsynth.cli import common
from docsynth.api.show import DRAW, Item, describe, rejects, samples, terminal_graphics


class Graphics(str, Enum):
    auto = "auto"
    halfblock = "halfblock"
    sixel = "sixel"
    kitty = "kitty"
    none = "none"


def preview(
    path: Annotated[Path, typer.Argument(help="A dataset, mixture or run directory.")],
    n: Annotated[int, typer.Option("-n", help="Samples to print (without a terminal, or with --no-pager).")] = 3,
    index: Annotated[int, typer.Option(help="Start at this sample (or reject).")] = 0,
    source: Annotated[str | None, typer.Option(help="Only samples of this source (the first word of `source`, or a part of it).")] = None,
    show_rejects: Annotated[bool, typer.Option("--rejects", help="In a run directory: what was rejected, and why.")] = False,
    seed: Annotated[int | None, typer.Option(help="Samples in a random order drawn with this seed.")] = None,
    images: Annotated[Graphics, typer.Option(help="How to draw images: auto picks Kitty or Sixel where the terminal has them, else half-blocks.")] = Graphics.auto,
    width: Annotated[int | None, typer.Option(help="Image width in terminal columns (default: half the terminal).")] = None,
    pager: Annotated[bool, typer.Option(help="On a terminal: one sample at a time, n/space next, p previous, q quit.")] = True,
) -> None:
    """Look at samples in the terminal: images, QA pairs, source and provenance.

    On a terminal it pages one sample at a time (n or space: next, p: previous, q: quit), with
    the images drawn in colour. Without a terminal (a pipe, a file) it prints -n samples as plain
    text, images described by format, size and bytes. --rejects shows a run's rejects with their
    reasons and the page images where the run still has them.
    """
    tty = sys.stdout.isatty() and sys.stdin.isatty()
    with common.failures():
        items = rejects(path, index, source) if show_rejects else samples(path, index, source, seed)
        mode = "none" if not tty else (terminal_graphics() if images == Graphics.auto else images.value)
        cols = width or max(20, min(100, shutil.get_terminal_size((100, 40)).columns // 2))
        if tty and pager:
            _page(items, mode, cols)
        else:
            shown = 0
            for item in items:
                _show(item, mode, cols, plain=not tty)
                shown += 1
                if shown >= n:
                    break
            if not shown:
                raise common.DocsynthError(f"no sample in {path}" + (f" of source '{source}'" if source else ""))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(text: object) -> str:
    """Text from the data, with its control characters shown as \\xNN: an escape sequence in a
    question (OSC 52 writes the clipboard, OSC 0 the window title) is shown, never obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _show(item: Item, mode: str, cols: int, plain: bool) -> None:
    o = common.out
    item = replace(item, source=_safe(item.source), reason=None if item.reason is None else _safe(item.reason),
                   details={_safe(k): _safe(v) for k, v in item.details.items()},
                   pairs=[(_safe(q), _safe(a)) for q, a in item.pairs])
    kind = "reject" if item.reason is not None else "sample"
    head = f"{kind} {item.index + 1:,} of {item.total:,}" + (f"  source: {item.source}" if item.source else "")
    if plain:
        print(head)
    else:
        o.rule(escape(head), style="cyan", align="left")
    if item.unusable is not None:
        line = f"a loader cannot use this sample: {_safe(item.unusable)} (docsynth export leaves it out)"
        print(line) if plain else o.print(f"[yellow]{escape(line)}[/yellow]")
    if item.reason is not None:
        print(f"reason: {item.reason}") if plain else o.print(f"[red]reason:[/red] {escape(item.reason)}")
        for k, v in item.details.items():
            print(f"  {k}: {v}") if plain else o.print(f"  [dim]{k}:[/dim] {escape(str(v))}")
    for i, data in enumerate(item.images):
        label = f"[image {i + 1}/{len(item.images)}: {describe(data)}]"
        print(label) if plain else o.print(f"[dim]{escape(label)}[/dim]")
        if mode != "none":
            try:
                sys.stdout.write(DRAW[mode](data, cols, max(8, cols // 2)) + "\n")
            except Exception as e:  # an image PIL cannot open is described, not drawn
                o.print(f"[yellow](cannot draw it: {type(e).__name__})[/yellow]")
            sys.stdout.flush()
    for q, a in item.pairs:
        if plain:
            print(f"Q: {q}\nA: {a}")
        else:
            o.print(f"[bold green]Q:[/bold green] {escape(q)}")
            o.print(f"[bold blue]A:[/bold blue] {escape(a)}")
    print() if plain else o.print()


def _page(items, mode: str, cols: int) -> None:
    import termios
    import tty as tty_mod
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    # cbreak for the whole session, entered without flushing: a key pressed while a sample is
    # drawn waits to be read (re-entering cbreak per key with tty's default TCSAFLUSH dropped it,
    # and cooked mode in between echoed it onto the picture)
    tty_mod.setcbreak(fd, termios.TCSANOW)
    try:
        _keys(items, mode, cols, fd)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


def _split_keys(text: str) -> list[str]:
    """Keys in what one read returned: an arrow's escape sequence is one key, any other character one."""
    keys, i = [], 0
    while i < len(text):
        n = 3 if text.startswith("\x1b[", i) else 1
        keys.append(text[i:i + n])
        i += n
    return keys


def _keys(items, mode: str, cols: int, fd: int) -> None:
    seen: list[Item] = []
    at = 0
    it = iter(items)
    pending: list[str] = []  # keys typed ahead of the drawing, one at a time
    while True:
        while at >= len(seen):
            nxt = next(it, None)
            if nxt is None:
                break
            seen.append(nxt)
        if at >= len(seen):
            if not seen:
                raise common.DocsynthError("nothing to show")
            at = len(seen) - 1
        common.out.clear()
        _show(seen[at], mode, cols, plain=False)
        common.out.print("[dim]n/space next  p previous  q quit[/dim]", end="")
        sys.stdout.flush()
        if not pending:
            pending = _split_keys(os.read(fd, 64).decode(errors="replace"))
        key = pending.pop(0)
        if key in ("q", "\x1b", "\x03"):
            common.out.print()
            return
        if key in ("p", "\x1b[D", "k"):
            at = max(0, at - 1)
        else:
            at += 1
