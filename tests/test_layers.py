"""The layers read top-down (cli -> api -> executors -> readers -> stages -> llm -> core) with no
import cycle anywhere, as the import contracts in pyproject.toml state; and no module grows past
what one reader takes in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 300


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the dev extra (pip install -e '.[dev]')"
    res = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def lint_with(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess:
    """The contracts checked on a copy of the package where `module` (a path under docsynth/)
    has one more line."""
    tree = tmp_path / "src"
    shutil.copytree(ROOT / "docsynth", tree / "docsynth", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    target = tree / "docsynth" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa: E402,F401\n")
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    return subprocess.run([lint, "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})


def test_a_stage_importing_an_executor_breaks_the_contract(tmp_path):
    """The contract is live: the same check fails on a tree where the ingest stage imports an executor."""
    res = lint_with(tmp_path, "ingest/stage.py", "from docsynth.executors import local")
    assert res.returncode != 0 and "docsynth.ingest.stage -> docsynth.executors.local" in res.stdout


def test_an_import_cycle_breaks_the_contract(tmp_path):
    """The dataset layout importing the writer that imports it (as stats and write once did)."""
    res = lint_with(tmp_path, "dataset/versions.py", "from docsynth.dataset import write")
    assert res.returncode != 0 and "no import cycles between sibling modules or packages BROKEN" in res.stdout
    assert "- .versions -> .write (1 import)" in res.stdout


def test_no_module_is_over_300_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "docsynth").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_nothing_below_the_cli_imports_the_package_top():
    """docsynth/__init__.py is the top floor (its lazy API imports docsynth.api); a layer below the
    CLI that imports it, for __version__ say, climbs over every layer. The version is in
    docsynth.core.version. (`from docsynth import hub` names a submodule, not the top.)"""
    import ast

    found = []
    for p in (ROOT / "docsynth").rglob("*.py"):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith("docsynth/cli/") or rel == "docsynth/__init__.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import) and any(a.name == "docsynth" for a in node.names):
                found.append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module == "docsynth" and not node.level:
                found += [f"{rel}:{node.lineno} ({a.name})" for a in node.names
                          if not (ROOT / "docsynth" / a.name).is_dir() and not (ROOT / "docsynth" / f"{a.name}.py").is_file()]
    assert not found, found
