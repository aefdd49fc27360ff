"""The docs say what the code does: the key tables are generated from the models, every command
of `docsynth --help` has its section, the README stays a short guide, and nothing points at
files outside the repository. `python -m tests.test_docs` rewrites the generated tables."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from docsynth.config.section import reference_markdown
from docsynth.config.mixture import Mixture
from docsynth.config.recipe import Recipe

ROOT = Path(__file__).resolve().parents[1]
TABLES = {"recipe": (ROOT / "docs" / "recipes.md", Recipe), "mixture": (ROOT / "docs" / "mixing.md", Mixture)}


def _with_table(text: str, name: str, model) -> str:
    start, end = f"<!-- reference:{name} -->", f"<!-- /reference:{name} -->"
    assert start in text and end in text, f"the doc lacks its {start} ... {end} markers"
    return text.split(start)[0] + start + "\n" + reference_markdown(model) + end + text.split(end, 1)[1]


def test_the_key_tables_are_the_models():
    for name, (path, model) in TABLES.items():
        text = path.read_text()
        assert _with_table(text, name, model) == text, f"{path} is out of date: python -m tests.test_docs"


def test_every_command_is_documented_and_the_readme_is_short():
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "--help"], capture_output=True, text=True, check=True)
    commands = re.findall(r"^│ (\w+) ", res.stdout, re.M)
    assert len(commands) >= 12, res.stdout
    docs = "\n".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    readme = (ROOT / "README.md").read_text()
    for c in commands:
        assert f"docsynth {c}" in readme, f"the README's command table lacks docsynth {c}"
        assert f"docsynth {c}" in docs, f"docs/ says nothing of docsynth {c}"
    assert len(readme.splitlines()) <= 300


def test_nothing_points_outside_the_repository():
    for path in [ROOT / "README.md", ROOT / "pyproject.toml", *ROOT.glob("docs/*.md"), *ROOT.glob("bench/*"),
                 *ROOT.glob("docsynth/**/*.py"), *ROOT.glob("recipes/**/*.yaml")]:
        text = path.read_text()
        assert "../shared" not in text and "MACHINE-NOTES" not in text and "DESIGN.md" not in text, path
    for link in re.findall(r"\]\(([^)#]+)\)", (ROOT / "README.md").read_text()):
        assert link.startswith("http") or (ROOT / link).exists(), link


if __name__ == "__main__":
    for name, (path, model) in TABLES.items():
        path.write_text(_with_table(path.read_text(), name, model))
        print(f"wrote {path}")
