"""A GGUF split over several PyPI packages (`pypi:STEM[1-N]#sha256=HEX`): the parts are found as
installed distributions (real dist-info folders on sys.path, read by importlib.metadata),
concatenated in order, and refused unless the result has the pinned sha256."""

from __future__ import annotations

import hashlib
import sys

import pytest

from docsynth.core.errors import DocsynthError, MissingDependencyError
from docsynth.llm.models import _PARTS, _assemble, _dtype


def _install(site, stem: str, i: int, data: bytes) -> None:
    name = f"{stem}{i}"
    pkg = name.replace("-", "_")
    (site / pkg / "data").mkdir(parents=True)
    (site / pkg / "__init__.py").write_text("raise ImportError('never imported')\n")
    (site / pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    info = site / f"{pkg}-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.2.0\n")
    (info / "RECORD").write_text(f"{pkg}/__init__.py,,\n{pkg}/data/part{i:02d}.bin,,\n{info.name}/METADATA,,\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    chunks = [b"GGUF" + bytes([i]) * 1000 for i in range(1, 4)]
    for i, c in enumerate(chunks, 1):
        _install(tmp_path, "fake-model-part", i, c)
    return tmp_path, hashlib.sha256(b"".join(chunks)).hexdigest(), b"".join(chunks)


def test_the_parts_are_joined_in_order_and_checked(site, tmp_path):
    _, sha, whole = site
    out = _assemble(_PARTS.match(f"fake-model-part[1-3]#sha256={sha}"), tmp_path / "model.gguf")
    assert out.read_bytes() == whole
    assert not any(m.startswith("fake_model_part") for m in sys.modules)  # read as data, never imported


def test_another_file_is_refused_and_a_missing_part_named(site, tmp_path):
    with pytest.raises(DocsynthError, match="not the pinned 0{64}: refused"):
        _assemble(_PARTS.match(f"fake-model-part[1-3]#sha256={'0' * 64}"), tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists()
    with pytest.raises(MissingDependencyError, match="fake-model-part4 is not installed: pip install fake-model-part4"):
        _assemble(_PARTS.match(f"fake-model-part[1-4]#sha256={site[1]}"), tmp_path / "b.gguf")


def test_auto_dtype_follows_the_cpu():
    flags = open("/proc/cpuinfo").read()
    want = "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
    assert _dtype("auto") == want and _dtype("float32") == "float32"
