"""The package as a user installs it: the wheel built from this checkout, installed (not
editable) into a fresh virtual environment, and used from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SAMPLES

pytestmark = pytest.mark.slow


def test_the_wheel_works_outside_the_checkout(tmp_path):
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("docsynth-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    res = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    away = tmp_path / "elsewhere"
    away.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DOCSYNTH_PROMPTS", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"

    def docsynth(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "docsynth"), *args], cwd=away, env=env, capture_output=True,
                              text=True, timeout=600)

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
