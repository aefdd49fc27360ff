"""Plugins (docsynth.core.plugins): the example package in tests/plugin_example, installed with
pip into a folder of its own, gives a filter, a backend and a prompt folder that a recipe names
like docsynth's own; without it, or with a misspelt name, the recipe is refused with a message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT, SAMPLES

RECIPE = {
    "name": "plugged", "seed": 0,
    "inputs": {"paths": [str(SAMPLES / "invoice.pdf"), str(SAMPLES / "table_report.pdf")]},
    "ingest": {"ocr": {"mode": "never"}},
    "generate": {"backend": "first_number", "model": "none", "prompts_dir": "plugin:example", "templates": ["numbers"],
                 "max_pages_per_sample": 1},
    "filters": ["code", {"name": "max_digits", "max_digits": 2}],
}


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """The example package, installed by pip (built from a copy: a build writes beside the source)."""
    work = tmp_path_factory.mktemp("plugin")
    shutil.copytree(ROOT / "tests" / "plugin_example", work / "src")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(work / "site"), str(work / "src")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert list((work / "site").glob("docsynth_plugin_example-0.1.0.dist-info/entry_points.txt"))
    return work / "site"


def docsynth(*args: str, plugins: Path | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([str(plugins)] if plugins else [])])
    return subprocess.run([sys.executable, "-m", "docsynth.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_a_recipe_runs_a_plugin_filter_backend_and_prompt_folder(plugin_path, tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    res = docsynth("run", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"), "--json", plugins=plugin_path)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads(res.stdout)
    write = s["write"]
    assert write["pairs_out"] > 0 and write["dropped"].get("max_digits", 0) > 0, write
    rows = pq.read_table(tmp_path / "out" / "dataset" / "data").to_pylist()
    answers = [t["assistant"] for r in rows for t in r["texts"]]
    assert answers and all(sum(c.isdigit() for c in a) <= 2 for a in answers)
    assert all(t["user"].startswith("Which figure comes number") for r in rows for t in r["texts"])  # the plugin's backend
    templates = {t for f in (tmp_path / "out" / "candidates").glob("*.parquet")
                 for t in pq.read_table(f, columns=["template"]).column("template").to_pylist()}
    assert templates == {"numbers"}  # the plugin's prompt folder
    shown = docsynth("prompts", "show", "numbers", "--dir", "plugin:example", plugins=plugin_path)
    assert shown.returncode == 0 and "numbers" in shown.stdout


def test_a_missing_or_misspelt_plugin_is_a_recipe_error(plugin_path, tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    res = docsynth("validate", str(tmp_path / "r.yaml"))  # the package is not on the path
    assert res.returncode == 2
    said = " ".join(res.stderr.split())
    assert "filters.1: no filter 'max_digits'" in said and "plugins installed: none" in said
    assert "generate.backend: no backend 'first_number'" in said
    typo = {**RECIPE, "filters": [{"name": "max_digit", "max_digits": 2}]}
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(typo))
    res = docsynth("validate", str(tmp_path / "typo.yaml"), plugins=plugin_path)
    assert res.returncode == 2 and "did you mean 'max_digits'?" in " ".join(res.stderr.split())
    bad = {**RECIPE, "filters": [{"name": "max_digits", "max_digits": -1}]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    res = docsynth("validate", str(tmp_path / "bad.yaml"), plugins=plugin_path)
    assert res.returncode == 2 and "filter plugin 'max_digits': max_digits:" in " ".join(res.stderr.split())
    assert docsynth("validate", str(tmp_path / "r.yaml"), plugins=plugin_path).returncode == 0
