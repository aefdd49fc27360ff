"""Starting a vLLM engine so that it fits the machine, and saying why when it cannot start.

On vLLM's CPU build, the engine's KV cache and thread binding come from VLLM_CPU_* variables,
and without them vLLM asks for 0.92 of the machine's memory: on an idle 24 GB machine that
fails at start ("Available memory on node 0 (21.16/23.54 GiB) on startup is less than desired
CPU memory utilization (0.92, 21.66 GiB)"), and on x86 it keeps one core for its scheduler,
half of a 2-core machine. The recipe's generate.cpu section sizes both (docsynth.config.recipe).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from docsynth.core.errors import DocsynthError
from docsynth.config.recipe import CpuEngineConfig
from docsynth.llm.backends import enginelog

log = logging.getLogger(__name__)
GiB = 1 << 30
KNOBS = ("generate.cpu.kv_cache_gib (the KV cache on vLLM's CPU build), generate.engine.gpu_memory_utilization "
         "(a GPU's share), generate.engine.max_model_len")


class EngineStartError(DocsynthError):
    """The engine could not start: the model, the cause, and the settings that change it."""


def available_memory() -> int:
    """Bytes of memory the kernel says are available now (MemAvailable)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def weights_bytes(model: str) -> int:
    """The size of a local model folder's weight files (0 for a Hub name: not known here)."""
    folder = Path(model)
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".gguf"))


def cpu_options(model: str, options: dict[str, Any], cpu: CpuEngineConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The engine options and the environment of its processes, with the CPU build's memory and
    cores set from the recipe unless a VLLM_CPU_* variable or the engine options already say;
    EngineStartError when the memory asked for is not there (checked here: past this point vLLM
    fails in a child process)."""
    opts, env = dict(options), {}
    if cpu.bind_all_cores and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
        # an explicit list: vLLM's count of reserved cores applies only to its own (auto) binding
        env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    free = available_memory()
    weights = weights_bytes(model)
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        kv, knob = int(os.environ["VLLM_CPU_KVCACHE_SPACE"]) * GiB, "VLLM_CPU_KVCACHE_SPACE"
    elif "kv_cache_memory_bytes" in opts:
        kv, knob = int(opts["kv_cache_memory_bytes"]), "generate.engine.kv_cache_memory_bytes"
    elif "gpu_memory_utilization" in opts:  # on the CPU build: that share of all memory
        kv = int(float(opts["gpu_memory_utilization"]) * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        knob, weights = "generate.engine.gpu_memory_utilization", 0  # vLLM counts the weights inside it
    else:
        kv = int(cpu.kv_cache_gib * GiB) if cpu.kv_cache_gib else int(min(cpu.kv_cache_share * max(free - weights, 0),
                                                                           cpu.kv_cache_max_gib * GiB))
        knob = "generate.cpu.kv_cache_gib"
        opts["kv_cache_memory_bytes"] = kv
    if kv + weights > free:
        raise EngineStartError(
            f"the vLLM engine for {model} cannot start: its KV cache ({kv / GiB:.1f} GiB, from {knob})"
            + (f" and weights ({weights / GiB:.1f} GiB)" if weights else "")
            + f" need more than the {free / GiB:.1f} GiB of memory available now; lower {knob} "
            "or generate.engine.max_model_len, or stop what else holds memory")
    log.info("vLLM-cpu: KV cache %.2f GiB (%s), threads bound to %s", kv / GiB, knob,
             env.get("VLLM_CPU_OMP_THREADS_BIND") or os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "vLLM's choice"))
    return opts, env


def start_error(model: str, e: BaseException) -> EngineStartError:
    """One message for an engine that failed to start: vLLM's reason where it gave one in this
    process (a bad option, a model it cannot load, a context too long for the model), else what
    its engine process reported before the message docsynth prints."""
    cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "Engine core initialization failed" in cause:
        log_file = os.environ.get("DOCSYNTH_ENGINE_LOG")
        cause = (enginelog.last_cause() or "its engine process failed") + (f" (its log: {log_file})" if log_file else "")
    return EngineStartError(f"the vLLM engine for {model} could not start: {cause}. Settings that change what it "
                            f"needs: {KNOBS}")
