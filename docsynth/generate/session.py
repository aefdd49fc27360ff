"""A backend ready for the generate stage: the backend itself, the model's tokens and its context."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from docsynth.generate.backends import Backend
from docsynth.generate.budget import HFTokens, Tokens, local_tokens
from docsynth.generate.models import resolve_model
from docsynth.core.recipe import GenerateConfig

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Session:
    backend: Backend
    tokens: Tokens
    context: int  # tokens of prompt plus answer the model takes
    model: str  # what the backend loads or asks for


def open_session(cfg: GenerateConfig, base: Path) -> Session:
    """Start the recipe's backend (an in-process engine starts here, once per process)."""
    if cfg.backend == "vllm":
        from docsynth.generate.backends.vllm import VLLMBackend

        model = resolve_model(cfg.model, base, cfg.model_dtype)
        backend = VLLMBackend(model, cfg.engine, cfg.cpu)
        context = cfg.context_tokens or backend.llm.model_config.max_model_len
        return Session(backend, HFTokens(backend.llm.get_tokenizer()), context, model)
    from docsynth.generate.backends.openai import OpenAIBackend

    backend = OpenAIBackend(cfg.openai, cfg.model)
    context = cfg.context_tokens or backend.context_length()
    if context is None:
        log.warning("the server does not report the model's context and generate.context_tokens is not set; "
                    "assuming generate.openai.default_context, %d tokens", cfg.openai.default_context)
        context = cfg.openai.default_context
    return Session(backend, local_tokens(cfg.model, cfg.openai.chars_per_token), context, cfg.model)
