"""Any OpenAI-compatible chat server (vllm serve, SGLang, ...), with bounded concurrency,
retries with backoff on 429, 5xx and connection errors, and a per-request timeout."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Sequence

from docsynth.core.errors import DocsynthError, MissingDependencyError
from docsynth.llm.backends import ChatRequest, Completion
from docsynth.config.recipe import OpenAIConfig, Sampling

log = logging.getLogger(__name__)
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.5, 30.0


class OpenAIBackend:
    """Chat completions over HTTP; the key is read from the environment and never logged."""

    def __init__(self, cfg: OpenAIConfig, model: str) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise MissingDependencyError("the openai backend needs httpx: pip install 'docsynth[openai]'") from None
        base = cfg.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise DocsynthError("generate.openai.base_url is not set (nor OPENAI_BASE_URL)")
        self.base = base.rstrip("/")
        self.cfg, self.model = cfg, model
        self._key = os.environ.get(cfg.api_key_env) or "EMPTY"  # local servers take any key

    def complete(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[Completion]:
        return asyncio.run(self._all(requests, sampling))

    def context_length(self) -> int | None:
        """The model's context as the server reports it (vLLM's /models has max_model_len), if it does."""
        import httpx

        try:
            resp = httpx.get(self.base + "/models", headers={"Authorization": f"Bearer {self._key}"},
                             timeout=min(self.cfg.timeout_s, 30.0))
            models = resp.json()["data"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        for m in models if isinstance(models, list) else []:
            if isinstance(m, dict) and m.get("id") == self.model and isinstance(m.get("max_model_len"), int):
                return m["max_model_len"]
        return None

    def check_vision(self) -> None:
        """DocsynthError unless the server's model takes an image part (asked once, before any
        work: a text-only model would otherwise fail every request, or answer without the image)."""
        import base64
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (32, 32), "white").save(buf, "PNG")
        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}}
        probe = ChatRequest([{"role": "user", "content": [image, {"type": "text", "text": "What colour is this?"}]}], 0)
        (reply,) = self.complete([probe], Sampling(temperature=0.0, max_tokens=16))
        if reply.error is None:
            return
        if reply.error.startswith("HTTP 4"):
            raise DocsynthError(f"generate.vision is true, but the server at {self.base} refuses an image for "
                                f"{self.model} ({reply.error[:300]}): name a vision-language model, or set vision: false")
        raise DocsynthError(f"cannot check that {self.model} at {self.base} takes images: {reply.error[:300]}")

    def close(self) -> None:
        pass

    async def _all(self, requests: Sequence[ChatRequest], sampling: Sampling) -> list[Completion]:
        import httpx

        limits = httpx.Limits(max_connections=self.cfg.concurrency, max_keepalive_connections=self.cfg.concurrency)
        headers = {"Authorization": f"Bearer {self._key}"}
        gate = asyncio.Semaphore(self.cfg.concurrency)
        async with httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits, headers=headers) as client:
            async def one(req: ChatRequest) -> Completion:
                async with gate:
                    return await self._one(client, req, sampling)

            return list(await asyncio.gather(*(one(r) for r in requests)))

    def url(self, req: ChatRequest) -> str:
        return self.base + ("/completions" if req.prompt is not None else "/chat/completions")

    def body(self, req: ChatRequest, sampling: Sampling) -> dict:
        body = {"model": self.model, "temperature": sampling.temperature, "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens, "seed": req.seed}
        if req.prompt is not None:
            body["prompt"] = req.prompt
        else:
            body["messages"] = req.messages
        if sampling.stop:
            body["stop"] = sampling.stop
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty  # a vLLM / SGLang extension
        if req.schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "qa_pairs", "schema": req.schema, "strict": True}}
        return body

    async def _one(self, client, req: ChatRequest, sampling: Sampling) -> Completion:
        import httpx

        body = self.body(req, sampling)
        rng = random.Random(req.seed)  # jitter, reproducible per request
        problem, hint = "no attempt made", None
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                log.info("retrying request (attempt %d of %d) after: %s", attempt + 1, self.cfg.max_retries + 1, problem)
                await asyncio.sleep(_delay(attempt, rng, hint))
                hint = None
            try:
                resp = await client.post(self.url(req), json=body)
            except httpx.TimeoutException:
                problem = f"timed out after {self.cfg.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                problem = f"connection error: {type(e).__name__}: {e}"
                continue
            if resp.status_code in _RETRY_STATUS:
                problem = f"HTTP {resp.status_code}: {resp.text[:200]}"
                hint = resp.headers.get("retry-after")
                continue
            if resp.status_code != 200:
                return Completion(None, error=f"HTTP {resp.status_code}: {resp.text[:300]}")
            return _completion(resp)
        log.warning("request failed after %d attempts: %s", self.cfg.max_retries + 1, problem)
        return Completion(None, error=f"failed after {self.cfg.max_retries + 1} attempts: {problem}")


def _delay(attempt: int, rng: random.Random, retry_after: str | None) -> float:
    """The server's Retry-After (seconds) if it sent one, else exponential backoff with jitter."""
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), BACKOFF_MAX_S)
        except ValueError:
            pass
    return min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S) * (0.5 + rng.random())


def _completion(resp) -> Completion:
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return Completion(None, error=f"malformed response from the server ({type(e).__name__}): {resp.text[:200]}")
    if not isinstance(text, str):
        return Completion(None, error="malformed response from the server: message content is not text")
    details = usage.get("prompt_tokens_details") or {}  # vllm serve reports it with --enable-prompt-tokens-details
    return Completion(text, choice.get("finish_reason"), int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0),
                      cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0)
