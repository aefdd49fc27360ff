"""The Python API, as a notebook user calls it: a recipe from a file or a dict, the whole run
(real pymupdf, the openai backend over real HTTP to a stand-in server), the dataset read back,
a mixture of it, and the errors a caller gets."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import docsynth
from tests.conftest import ROOT, text_pdf
from tests.generate.test_openai_backend import StandIn, ok

FACTS = "The Harbour Board met on 3 March 2024 and approved a budget of 4.2 million euros."


@pytest.fixture
def server():
    s = StandIn(lambda n, body: ok(json.dumps([{"question": "How large is the approved budget?",
                                               "answer": "4.2 million euros"}])))
    yield s
    s.close()


def test_a_run_from_python_then_the_dataset_and_a_mixture_of_it(tmp_path, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(2):
        text_pdf(docs / f"doc{i}.pdf", [f"Minutes {i}. " + FACTS])
    recipe = docsynth.load_recipe({
        "name": "harbour", "inputs": {"paths": [str(docs)]}, "ingest": {"workers": 1, "ocr": {"mode": "never"}},
        "generate": {"backend": "openai", "model": "stand-in", "context_tokens": 2048,
                     "openai": {"base_url": server.url}}})
    run = docsynth.run(recipe, tmp_path / "run")
    assert run.ingest.pages == 2 and run.generate.pairs == 2 and run.write.samples_out == 2
    ds = docsynth.open_dataset(tmp_path / "run" / "dataset")
    samples = list(ds.samples(n=5))
    assert [s.pairs for s in samples] == [[("How large is the approved budget?", "4.2 million euros")]] * 2
    assert len(samples[0].images) == 1 and samples[0].images[0][:2] == b"\xff\xd8"  # the page, as JPEG
    assert ds.stats().samples == 2
    mixture = tmp_path / "mix.yaml"
    mixture.write_text(f"sources: [{{name: harbour, path: {tmp_path / 'run' / 'dataset'}, repeat: 2}}]\n")
    m = docsynth.mix(mixture, tmp_path / "mix", seed=3)
    assert m.rows == 4 and m.seed == 3
    again = docsynth.run(recipe, tmp_path / "run")  # nothing changed: every stage reused
    assert again.ingest.tasks_skipped == again.ingest.tasks and again.write.reused


def test_a_recipe_file_resolves_its_paths_against_its_folder_and_errors_name_the_problem(tmp_path):
    r = docsynth.load_recipe(ROOT / "recipes" / "quickstart-base.yaml")
    assert r.name == "quickstart-base" and r.generate.prompts_dir == "builtin:base"
    with pytest.raises(docsynth.RecipeError, match="generate.modle: unknown key; did you mean 'generate.model'"):
        docsynth.load_recipe({"generate": {"modle": "x"}})
    with pytest.raises(docsynth.RecipeError, match="commit_files"):
        docsynth.push(tmp_path, "org/x", commit_files=0)
    with pytest.raises(docsynth.DocsynthError, match="holds no dataset shards"):
        docsynth.push(tmp_path, "org/x", dry_run=True)
    with pytest.raises(docsynth.RecipeError, match="total"):
        (tmp_path / "m.yaml").write_text(f"sources: [{{name: a, path: {tmp_path}, weight: 1}}]\ntotal: 5\n")
        docsynth.mix(tmp_path / "m.yaml", tmp_path / "out", total=0)


def test_importing_docsynth_loads_no_engine_and_no_stage():
    code = ("import sys, docsynth; assert docsynth.__version__; "
            "print(sorted(m for m in sys.modules if m.startswith(('docsynth.', 'vllm', 'torch', 'pymupdf'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "['docsynth.core', 'docsynth.core.version']"  # the version only


def test_no_subpackage_shadows_an_api_name():
    """`docsynth.mix(...)` is the API; a subpackage docsynth/mix/ would replace it with a module as
    soon as anything imported the subpackage (the mixer's package is docsynth/mixing/ for that)."""
    subpackages = {p.name for p in (ROOT / "docsynth").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "docsynth").glob("*.py")}
    assert not set(docsynth.__all__) & (subpackages | modules)
