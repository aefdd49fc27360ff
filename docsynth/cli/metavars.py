"""Help text that reads like click's: Typer 0.29 labels every option with its Python type
(`<bool>` beside a flag, `<str>`, `<list[str]>`) and writes a required argument as
`{pages_dir}` in the usage line. Here a flag has no label, a value is labelled TEXT, INTEGER,
FLOAT, PATH or its choices (a|b), and an argument is PAGES_DIR, as in click and most tools.

Typer 0.29 carries its own copy of click (typer._click), so this works on what every version
has (a parameter's param_type_name, metavar and display_type_rich) and leaves a parameter as it
is where something differs: help text is never worth a failed command."""

from __future__ import annotations

import re
from typing import Any

_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "path": "PATH", "bool": ""}


def plain_metavars(command: Any) -> Any:
    """Relabel the options and arguments of COMMAND and its subcommands, in place."""
    for p in getattr(command, "params", []):
        try:
            _relabel(p)
        except Exception:  # noqa: BLE001 - another Typer: keep its own label
            continue
    if hasattr(command, "get_help_option"):  # --help is made when help is asked for
        theirs = command.get_help_option

        def help_option(ctx: Any, theirs=theirs) -> Any:
            option = theirs(ctx)
            if option is not None and not getattr(option, "_docsynth_relabelled", False):
                try:
                    _relabel(option)
                    option._docsynth_relabelled = True
                except Exception:  # noqa: BLE001 - another Typer: keep its own label
                    pass
            return option

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        plain_metavars(sub)
    return command


def _relabel(p: Any) -> None:
    theirs = p.display_type_rich  # instance attributes shadow the class's methods
    counted = bool(getattr(p, "count", False))  # -v, -vv: a flag too
    p.display_type_rich = lambda ctx, theirs=theirs: "" if counted else plain_type(theirs(ctx))
    if p.param_type_name == "argument":
        name = str(p.metavar or p.name).upper()
        p.metavar = name
        if hasattr(type(p), "_usage_display_name"):
            p._usage_display_name = (lambda name=name, p=p: (name if p.required else f"[{name}]")
                                     + ("..." if p.nargs != 1 else ""))


def plain_type(label: str | None) -> str | None:
    """`<str>` -> TEXT, `<list[int]>` -> INTEGER, `<bool>` -> (nothing), `<path>` -> PATH; a
    label of docsynth's own (KEY=VALUE, N) or a list of choices (a|b) stays."""
    if not label:
        return label
    m = re.fullmatch(r"<(?:list\[)?([^\]>]+)\]?>", label)
    if not m:
        return label
    inner = m.group(1)
    return _TYPES.get(inner, inner if "|" in inner else inner.upper())
