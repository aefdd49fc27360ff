"""The openai backend over real HTTP on loopback, against a scripted stand-in server:
concurrency bound, retries on 429/5xx/dropped connections/timeouts, garbage answers, and the
key kept out of the logs. (The test against a real `vllm serve` comes with the engine tests.)"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from docsynth.core.errors import DocsynthError
from docsynth.llm.backends import ChatRequest
from docsynth.llm.backends import openai as backend_mod
from docsynth.llm.backends.openai import OpenAIBackend
from docsynth.config.recipe import OpenAIConfig, Sampling


class StandIn:
    """A chat-completions server whose answer to each request is decided by `script`."""

    def __init__(self, script):
        self.script, self.bodies, self.headers = script, [], []
        self.lock, self.active, self.max_active = threading.Lock(), 0, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with owner.lock:
                    n = len(owner.bodies)
                    owner.bodies.append(body)
                    owner.headers.append(dict(self.headers))
                    owner.active += 1
                    owner.max_active = max(owner.max_active, owner.active)
                try:
                    action = owner.script(n, body)
                    if action == "drop":
                        self.connection.shutdown(2)
                        return
                    status, payload, extra = action
                    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with owner.lock:
                        owner.active -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def ok(text: str, finish: str = "stop") -> tuple:
    return 200, {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                 "usage": {"prompt_tokens": 11, "completion_tokens": 7}}, {}


@pytest.fixture
def server():
    servers = []

    def make(script):
        s = StandIn(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(backend_mod, "BACKOFF_BASE_S", 0.01)


def requests(n: int, schema=None) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"doc {i}"}], seed=i, schema=schema) for i in range(n)]


def test_answers_come_back_in_order_with_bounded_concurrency(server):
    def script(n, body):
        time.sleep(0.05)
        return ok(f"answer to {body['messages'][0]['content']}")

    s = server(script)
    b = OpenAIBackend(OpenAIConfig(base_url=s.url, concurrency=4), "tiny")
    out = b.complete(requests(24, schema={"type": "array"}), Sampling(temperature=0.3, max_tokens=99))
    assert [c.text for c in out] == [f"answer to doc {i}" for i in range(24)]
    assert all(c.error is None and c.finish_reason == "stop" and c.output_tokens == 7 for c in out)
    assert 2 <= s.max_active <= 4
    body = s.bodies[0]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("tiny", 0.3, 99)
    assert body["response_format"]["json_schema"]["schema"] == {"type": "array"}
    assert sorted(b["seed"] for b in s.bodies) == list(range(24))


def test_429_5xx_and_dropped_connections_are_retried(server):
    plan = {0: (429, {"error": "slow down"}, {"Retry-After": "0"}), 1: (503, b"overloaded", {}),
            2: "drop", 3: (500, b"oops", {})}

    def script(n, body):
        return plan.get(n) or ok("fine")

    s = server(script)
    out = OpenAIBackend(OpenAIConfig(base_url=s.url, concurrency=1, max_retries=5), "m").complete(requests(1), Sampling())
    assert out[0].text == "fine" and out[0].error is None
    assert len(s.bodies) == 5


def test_a_request_that_keeps_failing_is_reported_and_the_others_succeed(server):
    def script(n, body):
        return (503, b"down", {}) if body["seed"] == 1 else ok("fine")

    s = server(script)
    out = OpenAIBackend(OpenAIConfig(base_url=s.url, max_retries=2), "m").complete(requests(3), Sampling())
    assert [c.text for c in out] == ["fine", None, "fine"]
    assert out[1].error == "failed after 3 attempts: HTTP 503: down"


def test_client_errors_are_not_retried(server):
    s = server(lambda n, body: (400, {"error": "max_tokens too large"}, {}))
    (c,) = OpenAIBackend(OpenAIConfig(base_url=s.url), "m").complete(requests(1), Sampling())
    assert c.text is None and c.error.startswith("HTTP 400") and "max_tokens too large" in c.error
    assert len(s.bodies) == 1


@pytest.mark.parametrize("payload, reason", [
    (b"<html>502 bad gateway</html>", "malformed response from the server (JSONDecodeError)"),
    ({"choices": []}, "malformed response from the server (IndexError)"),
    ({"choices": [{"message": {"content": None}}]}, "malformed response from the server: message content is not text"),
    ({"result": "ok"}, "malformed response from the server (KeyError)"),
])
def test_a_server_answering_garbage_is_an_error_not_a_crash(server, payload, reason):
    s = server(lambda n, body: (200, payload, {}))
    (c,) = OpenAIBackend(OpenAIConfig(base_url=s.url), "m").complete(requests(1), Sampling())
    assert c.text is None and c.error.startswith(reason)


def test_timeouts_are_retried_then_reported(server):
    def script(n, body):
        time.sleep(0.6 if n < 2 else 0)
        return ok("late but fine")

    s = server(script)
    b = OpenAIBackend(OpenAIConfig(base_url=s.url, timeout_s=0.3, max_retries=3), "m")
    (c,) = b.complete(requests(1), Sampling())
    assert c.text == "late but fine" and len(s.bodies) == 3
    s2 = server(lambda n, body: (time.sleep(0.6), ok("x"))[1])
    (c,) = OpenAIBackend(OpenAIConfig(base_url=s2.url, timeout_s=0.2, max_retries=1), "m").complete(requests(1), Sampling())
    assert c.error == "failed after 2 attempts: timed out after 0.2 s"


def test_nothing_listening_is_a_connection_error(tmp_path):
    b = OpenAIBackend(OpenAIConfig(base_url="http://127.0.0.1:9/v1", max_retries=1), "m")
    (c,) = b.complete(requests(1), Sampling())
    assert c.text is None and c.error.startswith("failed after 2 attempts: connection error")


def test_key_from_the_environment_is_sent_but_never_logged(server, monkeypatch, caplog):
    monkeypatch.setenv("MY_LLM_KEY", "sk-secret-123")
    s = server(lambda n, body: (503, b"busy", {}) if n == 0 else ok("fine"))
    caplog.set_level(logging.DEBUG)
    b = OpenAIBackend(OpenAIConfig(base_url=s.url, api_key_env="MY_LLM_KEY", max_retries=0), "m")
    out = b.complete(requests(2), Sampling())
    assert {h["Authorization"] for h in s.headers} == {"Bearer sk-secret-123"}
    assert "sk-secret-123" not in caplog.text and all("sk-secret" not in (c.error or "") for c in out)


def test_base_url_is_required(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(DocsynthError, match="generate.openai.base_url is not set"):
        OpenAIBackend(OpenAIConfig(), "m")


def test_server_killed_mid_run_and_restarted_loses_nothing(server, monkeypatch):
    """The server dies after a few answers and comes back on the same port 0.4 s later:
    requests are retried through the outage, and every request gets its own answer."""
    monkeypatch.setattr(backend_mod, "BACKOFF_BASE_S", 0.05)

    def script(n, body):
        time.sleep(0.02)
        return ok(f"answer to {body['messages'][0]['content']}")

    s = server(script)
    port, handler = s.server.server_address[1], s.server.RequestHandlerClass
    revived: list[ThreadingHTTPServer] = []

    def kill_and_restart():
        while len(s.bodies) < 4:
            time.sleep(0.005)
        s.server.shutdown()
        s.server.server_close()
        time.sleep(0.4)
        revived.append(ThreadingHTTPServer(("127.0.0.1", port), handler))  # same port, same recorder
        threading.Thread(target=revived[0].serve_forever, daemon=True).start()

    killer = threading.Thread(target=kill_and_restart)
    killer.start()
    t0 = time.monotonic()
    out = OpenAIBackend(OpenAIConfig(base_url=s.url, concurrency=2, max_retries=8), "m").complete(requests(16), Sampling())
    elapsed = time.monotonic() - t0
    killer.join()
    revived[0].shutdown()
    revived[0].server_close()
    assert [c.text for c in out] == [f"answer to doc {i}" for i in range(16)]
    assert all(c.error is None for c in out)
    assert elapsed >= 0.4  # the batch waited out the outage instead of failing
