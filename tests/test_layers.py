"""The layers read top-down (cli -> api -> executors -> readers -> stages -> decontam -> dataset ->
llm | hashing -> config -> core) with no import cycle anywhere, as the import contracts in pyproject.toml
state; every package and module says what it holds, and none grows past what one reader takes in
at a sitting."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500  # a sitting (test_every_module_reads_at_a_sitting)


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


def test_the_cli_reaching_past_the_api_breaks_the_contract(tmp_path):
    res = lint_with(tmp_path, "cli/write.py", "from docsynth.executors.local import run_write")
    assert res.returncode != 0 and "cli imports only api, config and core BROKEN" in res.stdout
    assert "docsynth.cli.write -> docsynth.executors.local" in res.stdout


def test_an_import_cycle_breaks_the_contract(tmp_path):
    """The filters importing the write stage that imports them (as dataset stats and write once did)."""
    res = lint_with(tmp_path, "write/filters.py", "from docsynth.write import stage")
    assert res.returncode != 0 and "no import cycles between sibling modules or packages BROKEN" in res.stdout
    assert "- .filters -> .stage (1 import)" in res.stdout


def test_every_room_says_what_it_holds():
    """A package holds one concern and a module one idea, and each says which in its docstring
    (the package's in __init__.py): a module is split when it holds two ideas, not when it
    passes a line count, and a reader finds where a thing lives from the docstrings alone."""
    import ast

    silent = [str(p.relative_to(ROOT)) for p in (ROOT / "docsynth").rglob("*.py")
              if p.name != "__main__.py" and not ast.get_docstring(ast.parse(p.read_text()))]
    assert not silent, silent


def test_every_module_reads_at_a_sitting():
    """The ceiling is a sitting, not a target: about ten screens of 50 lines. It used to be 300,
    which split files by size rather than by idea (issue 32); the largest module today is far
    below 500, and one that grows past it holds two ideas."""
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
