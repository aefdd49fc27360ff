"""A backend ready for the generate stage: the backend itself, the model's tokens and its context
(and, with generate.vision, its image token counts, after checking that it takes images)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from docsynth.core.errors import DocsynthError
from docsynth.llm.backends import Backend
from docsynth.llm.budget import HFTokens, Tokens, local_tokens
from docsynth.llm.images import ImageTokens, image_tokens
from docsynth.llm.models import PREFIX, cache_dir, resolve_model
from docsynth.config.recipe import GenerateConfig
from docsynth.core import plugins
from docsynth.core.torchlibs import set_aside_broken

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Session:
    backend: Backend
    tokens: Tokens
    context: int  # tokens of prompt plus answer the model takes
    model: str  # what the backend loads or asks for
    images: ImageTokens | None = None  # with vision: what a page image costs in tokens


def check_vision(cfg: GenerateConfig, base: Path) -> None:
    """Before any work (a stage's construction): with vision, DocsynthError if the model takes no
    images. A server is asked with a one-image probe; for the in-process engine, vLLM's model
    registry is asked about the architectures of the model's config.json where it is on this
    machine. What cannot be told here is told by open_session, once the engine has loaded it."""
    if not cfg.vision:
        return
    if cfg.backend == "openai":
        from docsynth.llm.backends.openai import OpenAIBackend

        OpenAIBackend(cfg.openai, cfg.model).check_vision()
        return
    if cfg.backend != "vllm":  # a plugin's: its own matter
        return
    archs = _architectures(cfg.model, base)
    set_aside_broken()
    try:
        from vllm.model_executor.models.registry import ModelRegistry

        infos = [ModelRegistry._try_inspect_model_cls(a) for a in archs]
    except Exception as e:  # no vLLM here, or another layout of its registry: the engine will tell
        log.debug("vision check skipped: %s", e)
        return
    known = [i for i in infos if i is not None]
    if known and not any(i.supports_multimodal for i in known):
        raise DocsynthError(f"generate.vision is true, but {cfg.model} is not a vision-language model "
                            f"(vLLM runs {', '.join(archs)} as text only): name a VLM, or set vision: false")


def _architectures(model: str, base: Path) -> list[str]:
    """The architectures a model's config.json names, if it is on this machine ([] if not)."""
    if model.startswith(PREFIX):
        folder = cache_dir() / "models" / model[len(PREFIX):].split("#")[0]
    else:
        folder = base / model if (base / model).is_dir() else Path(model)
    config = folder / "config.json"
    if not config.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(model, "config.json")
            config = Path(found) if isinstance(found, str) else config
        except Exception:  # not a Hub id, or no huggingface_hub
            pass
    try:
        return list(json.loads(config.read_text()).get("architectures") or [])
    except (OSError, ValueError, AttributeError):
        return []


def open_session(cfg: GenerateConfig, base: Path) -> Session:
    """Start the recipe's backend (an in-process engine starts here, once per process). With
    generate.vision, an engine that loads the model as text only is a DocsynthError here (a
    server's model is probed by check_vision, which the stages call before any work)."""
    if cfg.backend == "vllm":
        from docsynth.llm.backends.vllm import VLLMBackend

        model = resolve_model(cfg.model, base, cfg.model_dtype)
        engine, images = dict(cfg.engine), None
        if cfg.vision:
            images, kwargs = image_tokens(model, cfg.max_image_pixels, cfg.pixels_per_token)
            engine.setdefault("limit_mm_per_prompt", {"image": cfg.max_pages_per_sample})
            if kwargs:  # the budget bounds the processor's own resizing too (docsynth.llm.images)
                engine["mm_processor_kwargs"] = {**kwargs, **engine.get("mm_processor_kwargs", {})}
        backend = VLLMBackend(model, engine, cfg.cpu)
        if cfg.vision and not backend.llm.llm_engine.model_config.is_multimodal_model:
            arch = ", ".join(getattr(backend.llm.llm_engine.model_config, "architectures", None) or ["?"])
            raise DocsynthError(f"generate.vision is true, but {cfg.model} is not a vision-language model "
                                f"(vLLM loads {arch} as text only): name a VLM, or set vision: false")
        context = cfg.context_tokens or backend.llm.model_config.max_model_len
        return Session(backend, HFTokens(backend.llm.get_tokenizer()), context, model, images)
    if cfg.backend == "openai":
        from docsynth.llm.backends.openai import OpenAIBackend

        backend = OpenAIBackend(cfg.openai, cfg.model)
    else:  # a plugin's (docsynth.core.plugins): built from the generate section
        backend = plugins.load("backends", cfg.backend)(cfg)
    context = cfg.context_tokens or (backend.context_length() if hasattr(backend, "context_length") else None)
    if context is None:
        log.warning("the backend does not report the model's context and generate.context_tokens is not set; "
                    "assuming generate.openai.default_context, %d tokens", cfg.openai.default_context)
        context = cfg.openai.default_context
    images = image_tokens(cfg.model, cfg.max_image_pixels, cfg.pixels_per_token)[0] if cfg.vision else None
    return Session(backend, local_tokens(cfg.model, cfg.openai.chars_per_token), context, cfg.model, images)
