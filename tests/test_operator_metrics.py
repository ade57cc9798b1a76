"""GET /metrics for operators: what a Prometheus scrape of one app reads after real requests.

In-process apps (TestClient) with the offline chat engine, no speech synthesis and a real
SQLite file; spoken turns there use a FAKE recognizer (in this file's tier no model is loaded;
it blocks on demand to fill the recognizer's queue). The last test counts a turn of the real
model over HTTP, on the shared live server.
"""

from __future__ import annotations

import threading

import requests
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings
from voiceqna.api import create_api
from voiceqna.engines.chat_knowledge import KnowledgeBase
from voiceqna.engines.chat_offline import OfflineChatEngine
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.engines.tts_none import SilentSynthesizer
from voiceqna.page.handlers import PageHandlers
from voiceqna.ports import Transcript
from voiceqna.service import ChatService, Limits

KEY = "metrics-key-51c0"


class FakeRecognizer:
    """A FAKE recognizer (no model in this tier): hears `text`; waits for `go` when it is cleared."""

    description = "fake"

    def __init__(self, text: str = "안녕하세요") -> None:
        self.text = text
        self.go = threading.Event()
        self.go.set()
        self.entered = threading.Semaphore(0)

    def transcribe(self, samples) -> Transcript:
        self.entered.release()
        self.go.wait(30)
        return Transcript(self.text)

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


def make_service(settings, recognizer=None, limits: Limits | None = None) -> ChatService:
    return ChatService(recognizer or FakeRecognizer(), OfflineChatEngine(KnowledgeBase.load(settings.knowledge_base)),
                       SilentSynthesizer(), SQLiteStore(settings.sqlite_path), limits or Limits())


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, tuple], float]:
    """The scraped samples as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def turns(samples: dict, **labels: str) -> float:
    return samples.get(("voiceqna_turns_total", tuple(sorted(labels.items()))), 0.0)


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_typed_and_spoken_turns_are_counted_by_kind_and_timed_fake_recognizer(tmp_path, korean_wav):
    settings = make_settings(tmp_path / "data")
    client = TestClient(create_api(make_service(settings), settings))
    conversation_id = client.post("/create", json={}).json()["id"]
    assert client.post(f"/send/text/{conversation_id}", json={"message": "안녕하세요"}).status_code == 200
    streamed = client.post(f"/send/text/{conversation_id}/stream", json={"message": "고마워요"})
    assert streamed.status_code == 200 and "event: done" in streamed.text
    spoken = client.post(f"/send/audio/{conversation_id}", content=korean_wav("안녕하세요").read_bytes(),
                         headers={"Content-Type": "audio/wav"})
    assert spoken.status_code == 200, spoken.text

    samples = scrape(client)
    assert turns(samples, route="rest", kind="text", streamed="no", outcome="answered") == 1
    assert turns(samples, route="rest", kind="text", streamed="yes", outcome="answered") == 1
    assert turns(samples, route="rest", kind="audio", streamed="no", outcome="answered") == 1
    assert value(samples, "voiceqna_decode_seconds_count") == 1
    assert value(samples, "voiceqna_recognition_seconds_count") == 1
    assert value(samples, "voiceqna_turn_seconds_count", kind="text") == 2
    assert value(samples, "voiceqna_turn_seconds_count", kind="audio") == 1
    assert value(samples, "voiceqna_first_token_seconds_count", kind="text") == 2
    assert value(samples, "voiceqna_first_audio_seconds_count", kind="text") == 0  # TTS_ENGINE=none speaks nothing
    assert value(samples, "voiceqna_turn_seconds_sum", kind="audio") > 0
    text = client.get("/metrics").text
    assert conversation_id not in text and "안녕" not in text and "127.0.0.1" not in text and "testclient" not in text


def test_errors_are_counted_by_type_and_turns_outside_the_rest_api_count_as_the_page(tmp_path):
    settings = make_settings(tmp_path / "data")
    service = make_service(settings)
    client = TestClient(create_api(service, settings))
    assert client.post("/send/text/0123456789abcdef01234567", json={"message": "안녕"}).status_code == 404
    assert client.post("/create", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 400
    conversation_id = client.post("/create", json={}).json()["id"]
    stream = client.post(f"/send/text/{conversation_id}/stream", json={"message": " "})
    assert stream.status_code == 400  # refused before the stream starts: the error handler counts it
    service.send_text(conversation_id, "안녕하세요")  # what the page does: no REST request around it

    samples = scrape(client)
    assert value(samples, "voiceqna_errors_total", type="NotFound") == 1
    assert value(samples, "voiceqna_errors_total", type="InvalidInput") == 2
    assert turns(samples, route="page", kind="text", streamed="no", outcome="answered") == 1
    assert turns(samples, route="rest", kind="text", streamed="no", outcome="answered") == 0


class FailingFakeRecognizer(FakeRecognizer):
    """A FAKE recognizer that fails the way a crashed runtime does."""

    def transcribe(self, samples) -> Transcript:
        raise RuntimeError("the runtime crashed")


def test_a_failed_turn_is_counted_once_whole_or_streamed_fake_recognizer(tmp_path, korean_wav):
    settings = make_settings(tmp_path / "data")
    client = TestClient(create_api(make_service(settings, FailingFakeRecognizer()), settings))
    conversation_id = client.post("/create", json={}).json()["id"]
    wav = {"content": korean_wav("안녕하세요").read_bytes(), "headers": {"Content-Type": "audio/wav"}}
    assert client.post(f"/send/audio/{conversation_id}", **wav).status_code == 503
    streamed = client.post(f"/send/audio/{conversation_id}/stream", **wav)
    assert streamed.status_code == 200 and "event: error" in streamed.text

    samples = scrape(client)
    assert turns(samples, route="rest", kind="audio", streamed="no", outcome="failed") == 1
    assert turns(samples, route="rest", kind="audio", streamed="yes", outcome="failed") == 1
    assert value(samples, "voiceqna_errors_total", type="EngineUnavailable") == 2
    assert value(samples, "voiceqna_turn_seconds_count", kind="audio") == 0  # no answer, no whole-turn time


def test_the_recognizer_queue_and_turns_refused_by_admission_fake_recognizer(tmp_path, korean_wav):
    """One turn at the recognizer, one waiting, the third refused (503): the scrape shows 1
    waiting and 1 refused, and 0 waiting once the recognizer is free again."""
    settings = make_settings(tmp_path / "data")
    recognizer = FakeRecognizer()
    service = make_service(settings, recognizer, Limits(recognitions_at_once=1, max_waiting_recognitions=1))
    client = TestClient(create_api(service, settings))
    conversation_id = client.post("/create", json={}).json()["id"]
    wav = korean_wav("안녕하세요").read_bytes()
    recognizer.go.clear()
    first = service.stream_audio(conversation_id, wav)
    assert recognizer.entered.acquire(timeout=30)
    second = service.stream_audio(conversation_id, wav)
    refused = client.post(f"/send/audio/{conversation_id}", content=wav, headers={"Content-Type": "audio/wav"})
    assert refused.status_code == 503 and refused.json()["type"] == "Overloaded"
    samples = scrape(client)
    assert value(samples, "voiceqna_recognitions_waiting") == 1
    assert value(samples, "voiceqna_turns_refused_total") == 1
    assert value(samples, "voiceqna_errors_total", type="Overloaded") == 1

    recognizer.go.set()
    assert first.result().stored and second.result().stored
    samples = scrape(client)
    assert value(samples, "voiceqna_recognitions_waiting") == 0
    assert turns(samples, route="page", kind="audio", streamed="yes", outcome="answered") == 2


def test_metrics_need_the_api_key_like_every_route_but_health(tmp_path):
    settings = make_settings(tmp_path / "data", api_key=KEY)
    client = TestClient(create_api(make_service(settings), settings))
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "voiceqna_turns_total" in client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert client.get("/health").status_code == 200


def test_two_apps_in_one_process_keep_their_own_counters(tmp_path):
    apps = []
    for name in ("one", "two"):
        settings = make_settings(tmp_path / name)
        apps.append(TestClient(create_api(make_service(settings), settings)))
    conversation_id = apps[0].post("/create", json={}).json()["id"]
    apps[0].post(f"/send/text/{conversation_id}", json={"message": "안녕하세요"})
    assert turns(scrape(apps[0]), route="rest", kind="text", streamed="no", outcome="answered") == 1
    assert turns(scrape(apps[1]), route="rest", kind="text", streamed="no", outcome="answered") == 0


def test_open_hands_free_sessions_are_a_gauge(tmp_path):
    settings = make_settings(tmp_path / "data")
    service = make_service(settings)
    client = TestClient(create_api(service, settings))
    handlers = PageHandlers(service)
    conversation_id = service.create()
    try:
        tokens = [handlers.hands_free.open(conversation_id) for _ in range(2)]
        assert value(scrape(client), "voiceqna_handsfree_sessions") == 2
        handlers.hands_free.close(tokens[0])
        assert value(scrape(client), "voiceqna_handsfree_sessions") == 1
    finally:
        handlers.hands_free.close_all()


def test_a_real_spoken_turn_over_http_is_counted(api_url, korean_wav):
    """The live server (real Whisper base, python app.py --api-only): one spoken Korean turn
    more in voiceqna_turns_total and in the recognition histogram."""
    def counts() -> tuple[float, float]:
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(requests.get(f"{api_url}/metrics", timeout=30).text)
                   for s in f.samples}
        return (turns(samples, route="rest", kind="audio", streamed="no", outcome="answered"),
                value(samples, "voiceqna_recognition_seconds_count"))

    before = counts()
    conversation_id = requests.post(f"{api_url}/create", json={}, timeout=30).json()["id"]
    response = requests.post(f"{api_url}/send/audio/{conversation_id}", timeout=300,
                             files={"audio": ("turn.wav", korean_wav("고마워요").read_bytes(), "audio/wav")})
    assert response.status_code == 200 and response.json()["transcript"], response.text[:300]
    after = counts()
    assert after[0] == before[0] + 1 and after[1] >= before[1] + 1
