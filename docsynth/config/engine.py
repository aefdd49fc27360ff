"""The recipe's sections on how a model is asked: decoding, an OpenAI-compatible server, and
vLLM's CPU engine (shared by the generate and verify sections)."""

from __future__ import annotations

from pydantic import Field

from docsynth.config.section import Section


class Sampling(Section):
    """Decoding settings, passed to the backend."""

    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature (0: greedy)")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling: the smallest set of tokens with this much probability")
    max_tokens: int = Field(768, ge=16, description="tokens the model may write per request")
    seed: int | None = Field(None, description="sampling seed; default: derived from the recipe seed per request")
    repetition_penalty: float = Field(1.0, gt=0, description="above 1, tokens already written are less likely again")
    stop: list[str] = Field(default_factory=list, description=(
        "strings that end a completion (for few-shot prompts: the start of the next example)"))


class OpenAIConfig(Section):
    """An OpenAI-compatible server (vllm serve, SGLang, ...)."""

    base_url: str | None = Field(None, description="default: $OPENAI_BASE_URL")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key (never the key itself)")
    concurrency: int = Field(32, ge=1, description="requests in flight at once")
    timeout_s: float = Field(300.0, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="on 429, 5xx and connection errors, with backoff")
    default_context: int = Field(4096, ge=256, description=(
        "the model's context assumed when the server does not report it and generate.context_tokens is not set"))
    chars_per_token: float = Field(3.0, gt=0, description=(
        "when the model's tokenizer is not on this machine, the context budget counts this many characters "
        "per token (on the safe side for most tokenizers on prose)"))


class CpuEngineConfig(Section):
    """vLLM's CPU build only (a GPU build ignores it): the engine's memory and cores, which vLLM
    otherwise takes from VLLM_CPU_* variables. A variable that is set still wins, and so do
    kv_cache_memory_bytes or gpu_memory_utilization given in generate.engine."""

    kv_cache_gib: float | None = Field(None, gt=0, description=(
        "the KV cache (what VLLM_CPU_KVCACHE_SPACE sets); default: kv_cache_share of the memory "
        "available when the engine starts, at most kv_cache_max_gib"))
    kv_cache_share: float = Field(0.25, gt=0, le=0.9, description=(
        "share of the available memory the default KV cache takes (vLLM's own default, 0.92 of all "
        "memory, fails on a machine where anything else runs)"))
    kv_cache_max_gib: float = Field(4.0, gt=0, description=(
        "cap on the default KV cache: 4 GiB holds about 100 full 4k-token sequences of a 1.5B model"))
    bind_all_cores: bool = Field(True, description=(
        "bind the engine's threads to every core this process may use, none kept back (what "
        "VLLM_CPU_OMP_THREADS_BIND sets); false: vLLM's own binding, which keeps a core for its "
        "scheduler: half the cores of a 2-core machine"))
