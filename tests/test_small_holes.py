"""Issue 17's smaller holes that are closed: each bad value is refused before any work, with a
message naming it, through the real CLI."""

from __future__ import annotations


import pytest

from docsynth.core.errors import RecipeError
from docsynth.config.recipe import parse_recipe
from tests.conftest import SAMPLES
from tests.cli import invoke


def cli(*args: str, cwd):
    return invoke(*args, cwd=cwd)


@pytest.mark.parametrize("data, says", [
    ({"ingest": {"page_timeout_s": float("inf")}}, "ingest.page_timeout_s: Input should be a finite number"),
    ({"ingest": {"ocr": {"timeout_s": float("nan")}}}, "ingest.ocr.timeout_s: Input should be a finite number"),
    ({"generate": {"template_weights": [1, float("inf"), 1, 1, 1]}}, "generate.template_weights.1: Input should be a finite"),
    ({"name": "../../x"}, "not a plain name"),
    ({"name": ".hidden"}, "not a plain name"),
])
def test_values_that_cannot_be_right_are_refused(data, says):
    with pytest.raises(RecipeError, match=says.replace(".", r"\.")):
        parse_recipe(data, "r.yaml")


def test_an_inf_timeout_in_a_yaml_recipe_exits_2_before_any_work(tmp_path):
    (tmp_path / "r.yaml").write_text(f"ingest: {{page_timeout_s: .inf}}\ninputs: {{paths: ['{SAMPLES}']}}\n")
    res = cli("ingest", "--recipe", "r.yaml", "--out", "o", cwd=tmp_path)
    assert res.returncode == 2 and "finite number" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()


def test_an_output_inside_an_input_is_refused(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "invoice.pdf").write_bytes((SAMPLES / "invoice.pdf").read_bytes())
    for inputs in (["docs"], ["docs/**/*.pdf"], ["docs/*"]):
        res = cli("ingest", *inputs, "--out", "docs/out", cwd=tmp_path)
        assert res.returncode == 1 and "is inside the input" in res.stderr, res.stderr
    assert not (docs / "out" / "pages").exists()
    assert cli("ingest", "docs", "--out", "out", "--ocr", "never", cwd=tmp_path).returncode == 0  # beside it: fine
    # a glob that takes in only the folder's own PDFs cannot read a subfolder's shards
    assert cli("ingest", "docs/*.pdf", "--out", "docs/out", "--ocr", "never", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("repo_id", ["not a valid id!!", "no-org", "a/b/c"])
def test_a_bad_repo_id_is_a_usage_error(tmp_path, repo_id):
    res = cli("push", str(tmp_path), "--repo-id", repo_id, "--dry-run", cwd=tmp_path)
    assert res.returncode == 2 and f"--repo-id '{repo_id}'" in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("command", [["stats"], ["preview"], ["push", "--repo-id", "org/x", "--dry-run"]])
def test_a_corrupt_or_foreign_shard_is_named_not_a_traceback(tmp_path, command):
    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = tmp_path / "ds" / "data" / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    (tmp_path / "ds" / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                               "    path: data/train-*\n---\n# a dataset\n")
    for content, says in ((b"PAR1 not really", "is not a readable parquet file"), (None, "has no column 'images'")):
        if content is None:
            pq.write_table(pa.table({"x": [1, 2]}), shard)
        else:
            shard.write_bytes(content)
        res = cli(command[0], str(tmp_path / "ds"), *command[1:], cwd=tmp_path)
        assert res.returncode == 1 and str(shard) in res.stderr and says in res.stderr, res.stderr[-2000:]
        assert "Traceback" not in res.stderr


def test_preview_shows_escape_sequences_in_the_data_and_never_sends_them(tmp_path):
    import pyarrow.parquet as pq

    from docsynth.dataset.cauldron import SCHEMA, cauldron_row, rows_to_table

    hostile_q = "What is the total?\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write the clipboard
    hostile_a = "42\x1b]0;pwned\x07\x1b[2J"  # OSC 0: the window title; then clear the screen
    shard = tmp_path / "ds" / "data" / "train-00000-of-00001.parquet"
    shard.parent.mkdir(parents=True)
    row = cauldron_row([(SAMPLES.parent / "sample_pdfs" / "invoice.pdf").read_bytes()[:10]], [hostile_q], [hostile_a],
                       "src\x1b[31m")
    pq.write_table(rows_to_table([row]).cast(SCHEMA), shard)
    res = cli("preview", str(tmp_path / "ds"), "-n", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert "\\x1b]52;c;cm0gLXJmIH4=\\x07" in res.stdout and "42\\x1b]0;pwned" in res.stdout


def test_image_paths_of_a_source_stay_inside_its_image_root(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from docsynth.config.mixture import Mixture
    from docsynth.mixing.mixer import run_mix
    from tests.dataset.mixsources import png

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"the key")
    src = tmp_path / "src"
    (src / "imgs").mkdir(parents=True)
    (src / "imgs" / "a.png").write_bytes(png(5))
    turns = [{"from": "human", "value": "What is shown?"}, {"from": "gpt", "value": "A square."}]
    pq.write_table(pa.table({"image": ["imgs/a.png", str(secret), "../secret.txt", "imgs/../../secret.txt"],
                             "conversations": [turns] * 4}), src / "llava.parquet")
    m = Mixture.model_validate({"sources": [{"name": "l", "path": str(src / "llava.parquet"), "repeat": 1,
                                             "adapter": {"kind": "llava"}, "image_check": "none"}]})
    run_mix(m, tmp_path / "out")
    images = [img["bytes"] for r in pq.read_table(tmp_path / "out" / "data").to_pylist() for img in r["images"]]
    assert png(5) in images and b"the key" not in images
