"""Faults: an engine that errors or times out, a process killed mid-turn, a model that cannot load.

The chat and speech engines are a FAKE OpenAI-compatible server (OpenAI cannot be reached
here) behind a real `python app.py --api-only`; the recognizer fault mid-turn uses a fake
recognizer in-process (the real one cannot be made to fail on demand); the crash is a real
SIGKILL of a real server writing a real SQLite file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading

import pytest
import requests
from fastapi.testclient import TestClient

from tests.fake_openai import FakeOpenAI
from tests.live_server import free_port, live_api, server_env, store_rows
from tests.tiers import tier
from voiceqna.evaluation.app_process import start_app, wait_until_ready
from voiceqna.api import create_api
from voiceqna.engines.chat_offline import OfflineChatEngine
from voiceqna.config import PROJECT_ROOT
from voiceqna.engines.chat_knowledge import KnowledgeBase
from voiceqna.service import ChatService
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.engines.tts_espeak import EspeakSynthesizer

SEED = {"messages": ["안녕하세요", "반가워요"], "roles": ["user", "assistant"], "audios": ["", ""]}
SECRET = "sk-fault-test-5d2a"


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI(answer="서울이에요.")
    yield server
    server.close()


@pytest.fixture(scope="module")
@tier("server")
def engines_server(fake, tmp_path_factory):
    """Chat and speech both on the fake OpenAI server, with a 1 s client timeout."""
    data_dir = tmp_path_factory.mktemp("faults") / "data"
    with live_api(data_dir, chat_engine="openai", openai_api_key=SECRET, openai_base_url=fake.base_url,
                  openai_timeout_s="1", tts_engine="openai") as url:
        yield url, data_dir


@pytest.fixture
def fault(fake):
    """Set the fake's failure for one test; it is healthy again afterwards."""
    def set_fault(fail_with: int = 0, delay_s: float = 0.0, only: tuple[str, ...] = ()) -> None:
        fake.fail_with, fake.delay_s, fake.only = fail_with, delay_s, only
    yield set_fault
    set_fault()


def create(url: str) -> str:
    response = requests.post(f"{url}/create", json=SEED, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def conversation(url: str, conversation_id: str) -> list[dict]:
    response = requests.get(f"{url}/{conversation_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def assert_503(response: requests.Response, mentions: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["type"] == "EngineUnavailable" and mentions in body["error"], body
    assert response.headers["retry-after"].isdigit()
    assert "Traceback" not in response.text and SECRET not in response.text and "127.0.0.1" not in response.text


CHAT_FAULTS = {"error-500": {"fail_with": 500}, "timeout": {"delay_s": 3.0}}


@pytest.mark.parametrize("how", CHAT_FAULTS)
def test_chat_engine_fault_is_503_stores_nothing_and_the_next_turn_works(engines_server, fault, how):
    url, data_dir = engines_server
    conversation_id = create(url)
    before = store_rows(data_dir)
    fault(**CHAT_FAULTS[how], only=("/chat/completions",))
    response = requests.post(f"{url}/send/text/{conversation_id}", json={"message": "수도가 어디예요?"}, timeout=60)
    assert_503(response, "chat engine did not answer")
    assert conversation(url, conversation_id) == [{"message": m, "role": r, "audio": ""}
                                                  for m, r in zip(SEED["messages"], SEED["roles"])]
    assert store_rows(data_dir) == before
    fault()  # the engine is back: the same conversation goes on
    again = requests.post(f"{url}/send/text/{conversation_id}", json={"message": "수도가 어디예요?"}, timeout=60)
    assert again.status_code == 200 and again.json()["text"] == "서울이에요."
    assert [m["message"] for m in conversation(url, conversation_id)][2:] == ["수도가 어디예요?", "서울이에요."]


def test_chat_engine_fault_on_a_spoken_turn_keeps_neither_recording_nor_answer(engines_server, fault, korean_wav):
    url, data_dir = engines_server
    conversation_id = create(url)
    before = store_rows(data_dir)
    fault(fail_with=502, only=("/chat/completions",))
    with open(korean_wav("고마워요"), "rb") as clip:
        response = requests.post(f"{url}/send/audio/{conversation_id}", files={"audio": ("q.wav", clip, "audio/wav")},
                                 timeout=120)
    assert_503(response, "chat engine")
    assert len(conversation(url, conversation_id)) == 2 and store_rows(data_dir) == before


SPEECH_FAULTS = {"error-500": {"fail_with": 500}, "timeout": {"delay_s": 3.0}}


@pytest.mark.parametrize("how", SPEECH_FAULTS)
def test_speech_engine_fault_answers_in_text_and_keeps_the_turn(engines_server, fault, how):
    url, data_dir = engines_server
    conversation_id = create(url)
    fault(**SPEECH_FAULTS[how], only=("/audio/speech",))
    response = requests.post(f"{url}/send/text/{conversation_id}", json={"message": "수도가 어디예요?"}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "서울이에요." and body["audio"] == "" and body["stored"] is True
    assert "could not be spoken" in body["audio_error"] and "kept as text" in body["audio_error"]
    assert "127.0.0.1" not in body["audio_error"] and SECRET not in body["audio_error"]
    assert conversation(url, conversation_id)[2:] == [
        {"message": "수도가 어디예요?", "role": "user", "audio": ""},
        {"message": "서울이에요.", "role": "assistant", "audio": ""},
    ]


def test_info_names_the_engines_without_their_addresses_or_keys(engines_server, fake):
    url, data_dir = engines_server
    info = requests.get(f"{url}/info", timeout=30)
    assert info.json()["chat"].startswith("OpenAI-compatible") and info.json()["store"] == "SQLite"
    for secret in (fake.base_url, f":{fake.server.server_address[1]}", SECRET, str(data_dir), str(PROJECT_ROOT)):
        assert secret not in info.text


# --- the recognizer ---


class FailingFakeRecognizer:
    """A FAKE recognizer that fails mid-turn the way a crashed inference runtime does (the real
    model cannot be made to fail on demand)."""

    def transcribe(self, samples):
        raise RuntimeError("CUDA error: device-side assert triggered at /opt/secret/runtime.cu:42")


def test_recognizer_fault_mid_turn_is_503_and_stores_nothing_fake_recognizer(settings, korean_wav):
    service = ChatService(FailingFakeRecognizer(), OfflineChatEngine(KnowledgeBase.load(settings.knowledge_base)),
                          EspeakSynthesizer(), SQLiteStore(settings.sqlite_path))
    client = TestClient(create_api(service, settings), raise_server_exceptions=False)
    conversation_id = client.post("/create", json=SEED).json()["id"]
    before = store_rows(settings.data_dir)
    response = client.post(f"/send/audio/{conversation_id}", content=korean_wav("고마워요").read_bytes(),
                           headers={"Content-Type": "audio/wav"})
    assert response.status_code == 503 and response.headers["retry-after"].isdigit()
    assert "speech recognizer failed" in response.json()["error"]
    assert "/opt/secret" not in response.text and "CUDA" not in response.text
    assert len(client.get(f"/{conversation_id}").json()) == 2 and store_rows(settings.data_dir) == before


@pytest.mark.server
def test_a_corrupt_whisper_model_stops_the_server_at_start_with_the_fix(tmp_path):
    model = tmp_path / "broken-whisper"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.bin").write_bytes(os.urandom(4096))
    env = server_env(tmp_path / "data", {"WHISPER_MODEL": str(model)})
    result = subprocess.run([sys.executable, "app.py", "--api-only", "--host", "127.0.0.1",
                             "--port", str(free_port()), "--no-warm-up"],
                            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 2, log
    assert "Cannot start: Could not load Whisper model" in log and "WHISPER_MODEL" in log
    assert "Traceback" not in log


# --- a crash in the middle of turns ---


@pytest.mark.server
def test_sigkill_mid_turns_then_restart_keeps_only_whole_turns(fake, tmp_path):
    """20 clients send turns as fast as they can (the chat engine takes 0.2 s, so many are in
    flight); the server is killed with SIGKILL; a new one on the same DATA_DIR must find every
    acknowledged turn, nothing half-written, and a sound SQLite file."""
    data_dir, log_path = tmp_path / "data", tmp_path / "server.log"
    settings = {"CHAT_ENGINE": "openai", "OPENAI_API_KEY": "unused", "OPENAI_BASE_URL": fake.base_url,
                "TTS_ENGINE": "none"}
    fake.delay_s = 0.2

    def start() -> tuple[subprocess.Popen, str]:
        app = start_app(data_dir, ["--api-only"], settings, log_path=log_path)
        wait_until_ready(app)
        return app.process, app.url

    process, url = start()
    ids = [requests.post(f"{url}/create", json={}, timeout=30).json()["id"] for _ in range(20)]
    sent: dict[str, list[str]] = {i: [] for i in ids}
    acknowledged: dict[str, int] = {i: 0 for i in ids}
    refused: list[str] = []
    enough = threading.Event()
    lock = threading.Lock()

    def client(conversation_id: str) -> None:
        for turn in range(1000):
            text = f"{conversation_id[-6:]} 차례 {turn}"
            sent[conversation_id].append(text)
            try:
                response = requests.post(f"{url}/send/text/{conversation_id}", json={"message": text}, timeout=60)
            except requests.RequestException:
                return  # the server is gone
            if response.status_code != 200:
                refused.append(response.text)
                return
            with lock:
                acknowledged[conversation_id] += 1
                if sum(acknowledged.values()) >= 60:
                    enough.set()

    threads = [threading.Thread(target=client, args=(i,)) for i in ids]
    try:
        for t in threads:
            t.start()
        assert enough.wait(timeout=300), "the server answered fewer than 60 turns"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        for t in threads:
            t.join(timeout=120)
    finally:
        fake.delay_s = 0.0
        if process.poll() is None:
            process.kill()

    assert refused == []
    process, url = start()  # same DATA_DIR: the store must open cleanly
    try:
        with sqlite3.connect(data_dir / "conversations.sqlite3") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for conversation_id in ids:
            messages = requests.get(f"{url}/{conversation_id}", timeout=30).json()
            roles = [m["role"] for m in messages]
            assert roles == ["user", "assistant"] * (len(messages) // 2), f"half a turn in {conversation_id}"
            users = [m["message"] for m in messages[::2]]
            assert users == sent[conversation_id][:len(users)], "a turn is missing, repeated or out of order"
            assert acknowledged[conversation_id] <= len(users) <= len(sent[conversation_id])
            assert all(m["message"] == "서울이에요." for m in messages[1::2])
            again = requests.post(f"{url}/send/text/{conversation_id}", json={"message": "다시"}, timeout=60)
            assert again.status_code == 200
            assert len(requests.get(f"{url}/{conversation_id}", timeout=30).json()) == len(messages) + 2
    finally:
        process.terminate()
        process.wait(timeout=30)
