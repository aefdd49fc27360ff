"""supervised() on real processes, without an engine: the slow real-engine test is in
tests/run/test_supervision.py. Here a real child process stands in for vLLM's EngineCore, so the
race CI met (the call itself raising vLLM's EngineDeadError before the watcher looked) is pinned."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import pytest

from docsynth.llm.backends.supervise import EngineDiedError, supervised


class EngineDeadError(Exception):  # the name vLLM's exception has; supervise matches it by name
    pass


class _Resources:
    def __init__(self, processes):
        self.engine_manager = type("M", (), {"processes": processes})()
        self.engine_dead = False


def _llm(processes):
    llm = type("L", (), {})()
    llm.llm_engine = type("E", (), {})()
    llm.llm_engine.engine_core = type("C", (), {})()
    llm.llm_engine.engine_core.resources = _Resources(processes)
    return llm


def _sleeper():
    time.sleep(600)  # killed by the test or the fixture


@pytest.fixture
def engine():
    p = mp.get_context("spawn").Process(target=_sleeper, name="EngineCore_DP0")
    p.start()
    yield p
    p.kill()
    p.join()


def test_a_call_that_raises_enginedeaderror_after_the_kill_names_the_process_and_signal(engine):
    engine.kill()

    def call():
        raise EngineDeadError("EngineCore encountered an issue. See stack trace (above) for the root cause.")

    with pytest.raises(EngineDiedError) as e:
        supervised(_llm([engine]), call, "generating for task 3")
    assert "EngineCore_DP0" in str(e.value) and "killed by signal 9" in str(e.value) and "task 3" in str(e.value)
    assert "run the same command again" in str(e.value)


def test_a_call_waiting_when_the_engine_is_killed_fails_within_seconds(engine):
    never = threading.Event()
    threading.Timer(0.2, engine.kill).start()
    with pytest.raises(EngineDiedError, match="killed by signal 9"):
        supervised(_llm([engine]), lambda: never.wait(60), "generating")


def test_an_error_of_a_live_engine_is_passed_on_unchanged(engine):
    def call():
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        supervised(_llm([engine]), call, "generating")
    assert supervised(_llm([engine]), lambda: 42, "generating") == 42
