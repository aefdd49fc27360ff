"""The logging config docsynth hands vLLM's engine processes (docsynth.llm.backends.enginelog)."""

from __future__ import annotations

import json
import subprocess
import sys

from docsynth.llm.backends import enginelog


def test_a_config_left_by_another_version_is_not_taken(tmp_path):
    """The config lives in the shared cache (DOCSYNTH_CACHE/logs). One written by a docsynth
    whose handler lived in another module (docsynth.generate.backends.enginelog, before llm/)
    must not be reused: vLLM would fail to start with "Unable to configure handler 'docsynth'"."""
    stale = {"version": 1, "handlers": {"docsynth": {"class": "docsynth.generate.backends.enginelog.EngineLogHandler"}},
             "loggers": {"vllm": {"handlers": ["docsynth"]}}}
    (tmp_path / "vllm-logging-info.json").write_text(json.dumps(stale))
    env = enginelog._config(tmp_path)
    config = json.loads(open(env["VLLM_LOGGING_CONFIG_PATH"]).read())
    assert config["handlers"]["docsynth"]["class"] == "docsynth.llm.backends.enginelog.EngineLogHandler"
    code = f"import json, logging.config; logging.config.dictConfig(json.load(open({env['VLLM_LOGGING_CONFIG_PATH']!r})))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0  # as an engine process
