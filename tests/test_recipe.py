"""Recipes: validation, key-path errors with suggestions, shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from docsynth.core.errors import RecipeError
from docsynth.config.section import config_hash
from docsynth.config.recipe import Recipe, load_recipe, parse_recipe

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_live_in_the_models():
    r = Recipe()
    assert (r.ingest.dpi, r.ingest.image_format, r.ingest.ocr.mode, r.ingest.ocr.languages) == (150, "jpeg", "auto", "eng")


@pytest.mark.parametrize("data, message", [
    ({"ingset": {}}, "ingset: unknown key; did you mean 'ingest'?"),
    ({"ingest": {"dpii": 200}}, "ingest.dpii: unknown key; did you mean 'ingest.dpi'?"),
    ({"ingest": {"ocr": {"langauges": "eng"}}}, "ingest.ocr.langauges: unknown key; did you mean 'ingest.ocr.languages'?"),
    ({"inputs": {"pdf_colum": "x"}}, "inputs.pdf_colum: unknown key; did you mean 'inputs.pdf_column'?"),
    ({"ingest": {"ocr": {"mode": "sometimes"}}}, "ingest.ocr.mode: Input should be 'auto', 'always' or 'never'"),
    ({"ingest": {"dpi": 10}}, "ingest.dpi: Input should be greater than or equal to 36"),
    ({"ingest": {"ocr": {"languages": "eng; rm -rf"}}}, "ingest.ocr.languages: String should match pattern"),
    ({"zzz": 1}, "zzz: unknown key (valid keys here: decontaminate, filters, generate, ingest, inputs, name, ray, seed, verify, write)"),
])
def test_invalid_recipes_name_the_key_path(data, message):
    with pytest.raises(RecipeError) as e:
        parse_recipe(data, "r.yaml")
    assert message in str(e.value)
    assert str(e.value).startswith("r.yaml is not a valid recipe")


def test_every_problem_is_listed_at_once():
    with pytest.raises(RecipeError) as e:
        parse_recipe({"ingest": {"dpi": 0, "workerz": 2}}, "r.yaml")
    assert "ingest.dpi" in str(e.value) and "ingest.workerz" in str(e.value)


def test_not_a_mapping_and_bad_yaml(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="must be a YAML mapping, got list"):
        load_recipe(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("ingest: {dpi: [\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")
    with pytest.raises(RecipeError, match="cannot read recipe"):
        load_recipe(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    recipe, base = load_recipe(path)
    assert base == path.parent
    assert recipe.inputs.paths


def test_config_hash_is_stable_and_sensitive():
    a, b = Recipe(), Recipe()
    assert config_hash(a.ingest) == config_hash(b.ingest)
    b.ingest.dpi = 200
    assert config_hash(a.ingest) != config_hash(b.ingest)


@pytest.mark.parametrize("data, message", [
    ({"generate": {"backend": "tgi"}}, "generate.backend: no backend 'tgi' (docsynth's: vllm, openai; plugins installed: none"),
    ({"generate": {"sampling": {"temprature": 0.2}}}, "did you mean 'generate.sampling.temperature'?"),
    ({"generate": {"templates": ["a", "b"], "template_weights": [1]}}, "template_weights has 1 weights for 2 templates"),
    ({"generate": {"template_weights": [0, 0, 0, 0, 0]}}, "must be non-negative and not all zero"),
    ({"generate": {"openai": {"conurrency": 4}}}, "did you mean 'generate.openai.concurrency'?"),
])
def test_generate_section_is_validated(data, message):
    with pytest.raises(RecipeError) as e:
        parse_recipe(data, "r.yaml")
    assert message in str(e.value)


def test_generate_defaults_and_engine_passthrough():
    r = parse_recipe({"generate": {"engine": {"tensor_parallel_size": 2, "dtype": "bfloat16"}}})
    assert r.generate.engine == {"tensor_parallel_size": 2, "dtype": "bfloat16"}
    assert len(r.generate.templates) == 5 and r.generate.pairs_per_page == 4 and r.generate.guided_json


@pytest.mark.parametrize("name", ["quickstart", "docmatix", "scanned"])
def test_shipped_recipes_are_valid_with_their_templates(name):
    from docsynth.llm.prompts import recipe_templates
    from docsynth.config.recipe import load_recipe

    r, base = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / f"{name}.yaml")
    assert recipe_templates(r.generate, base) and r.name == name and r.filters
