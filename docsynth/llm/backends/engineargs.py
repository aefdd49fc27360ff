"""The keys of a recipe's `engine` section checked against vLLM's own engine arguments before any
work starts: a typo (`max_modle_len`) used to pass `validate` and fail only when the engine
started, after ingest had run."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from docsynth.core.errors import RecipeError
from docsynth.core.torchlibs import set_aside_broken


def check_engine_options(options: dict[str, Any] | None, where: str) -> None:
    """RecipeError naming each key of `options` that vLLM's EngineArgs does not have, with the
    nearest that it does. Nothing to check without vLLM (the engine cannot start here anyway;
    importing it costs about 7 s on 2 cores, so only a non-empty section does)."""
    if not options:
        return
    set_aside_broken()
    try:
        from vllm.engine.arg_utils import EngineArgs
    except Exception:  # noqa: BLE001 - no vLLM, or a broken one: the engine's own start says which
        return
    known = [f.name for f in dataclasses.fields(EngineArgs)]
    bad = [k for k in options if k not in known]
    if bad:
        hints = []
        for k in bad:
            near = difflib.get_close_matches(k, known, n=1)
            hints.append(f"  - {where}.{k}: not a vLLM engine argument" + (f" (did you mean {near[0]}?)" if near else ""))
        raise RecipeError(f"{where} has keys vLLM does not know:\n" + "\n".join(hints))


def check_recipe_engines(recipe) -> None:
    """Both engine sections a recipe can start: generate's, and verify's where it has its own."""
    if recipe.generate.backend == "vllm":
        check_engine_options(recipe.generate.engine, "generate.engine")
    if recipe.verify.enabled and (recipe.verify.backend or recipe.generate.backend) == "vllm":
        check_engine_options(recipe.verify.engine, "verify.engine")
