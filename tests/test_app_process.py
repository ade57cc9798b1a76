"""The one helper that starts the app as a process (voiceqna/evaluation/app_process.py), used by
the tests' servers and the benchmarks: a clean environment, and a start that fails says why."""

from __future__ import annotations

import os

import pytest

from voiceqna.config import PROJECT_ROOT
from voiceqna.evaluation import app_process
from voiceqna.evaluation.app_process import AppDidNotStart, server_env


def test_the_environment_blanks_every_setting_then_sets_the_given_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAT_ENGINE", "openai")  # the developer's shell must not leak in
    monkeypatch.setenv("API_KEY", "from-the-shell")
    env = server_env(tmp_path / "data", {"api_key": "s3cret", "MAX_AUDIO_S": "4"})
    assert env["CHAT_ENGINE"] == "" and env["API_KEY"] == "s3cret" and env["MAX_AUDIO_S"] == "4"
    assert env["DATA_DIR"] == str(tmp_path / "data") and env["MODELS_DIR"] == str(PROJECT_ROOT / "models")
    assert env["PATH"] == os.environ["PATH"]  # everything else is kept


@pytest.mark.server
def test_an_app_that_stops_at_start_is_reported_with_its_log(tmp_path):
    with pytest.raises(AppDidNotStart, match=r"exited with 2:[\s\S]*MAX_UPLOAD_MB='lots' is not a valid"):
        with app_process.running_app(tmp_path / "data", settings={"max_upload_mb": "lots"}):
            pass
