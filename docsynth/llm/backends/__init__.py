"""LLM backends behind one small interface: a batch of chat requests in, completions out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from docsynth.config.recipe import Sampling


@dataclass(slots=True)
class ChatRequest:
    """One chat to complete, or with prompt set, one plain text to continue (a base model);
    schema (JSON schema) asks for guided decoding where supported."""

    messages: list[dict[str, str]]
    seed: int
    schema: dict | None = None
    prompt: str | None = None
    regex: str | None = None  # the in-process engine guides by this instead of the schema: a JSON
    # schema leaves whitespace free, and greedy decoding of a weak model fills max_tokens with it
    # (measured: the tiny model at temperature 0 wrote '{' and 383 blanks; vLLM's per-request
    # disable_any_whitespace is ignored, the setting is engine-wide)


@dataclass(slots=True)
class Completion:
    """The model's reply, or why there is none (error: a transport failure after retries)."""

    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    cached_tokens: int = 0  # of the prompt, served from the engine's prefix cache (0 where not reported)


class Backend(Protocol):
    def complete(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[Completion]:
        """One completion per request, in request order; never raises for a single request."""
        ...

    def close(self) -> None: ...


def derive_seed(seed: int, key: str, attempt: int = 0) -> int:
    """A per-request seed from the run's seed, the sample and the attempt (31 bits)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}:{attempt}".encode()).digest()[:4], "big") >> 1
