"""Retries never double a turn: a send with an Idempotency-Key that was already answered gets
the first answer back and stores nothing, in process and over HTTP (whole and streamed).

The chat engine is a FAKE OpenAI-compatible server (OpenAI cannot be reached here), so the
tests can count how often it was asked; in process the recognizer is a fake (tests/fakes.py) that
counts its calls; everything else is real: SQLite, and over HTTP Whisper base in
`python app.py --api-only` on loopback. Two replicas on one store: tests/test_replicas.py;
the store contract (SQLite, MongoDB): tests/test_store_contract.py."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
import requests

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from tests.live_server import store_rows
from voiceqna import sse
from voiceqna.compose import build_service
from voiceqna.errors import InvalidInput
from voiceqna.ports import Done, Heard, Sentence, SentenceAudio

SEED = {"messages": ["안녕하세요", "반가워요"], "roles": ["user", "assistant"], "audios": ["", ""]}


@pytest.fixture(scope="module")
def fake(openai_fake):
    yield openai_fake.reset(answer="서울이에요. 한국의 수도예요.")
    openai_fake.reset()


@pytest.fixture
def service(fake, tmp_path, fake_recognizer):
    settings = make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="unused",
                             openai_base_url=fake.base_url)
    return build_service(settings, recognizer=fake_recognizer)


def chat_requests(fake: FakeOpenAI) -> int:
    return sum(r["path"].endswith("/chat/completions") for r in fake.requests)


def test_a_repeated_typed_turn_gets_the_first_answer_and_stores_nothing_fake_openai_server(service, fake):
    cid = service.create()
    asked = chat_requests(fake)
    first = service.send_text(cid, "한국의 수도는?", idempotency_key="q-1")
    fake.answer = "다른 대답이에요."  # a second run would answer differently
    try:
        again = service.send_text(cid, "한국의 수도는?", idempotency_key="q-1")
    finally:
        fake.answer = "서울이에요. 한국의 수도예요."
    assert (again.text, again.audio, again.transcript) == (first.text, first.audio, first.transcript)
    assert again.repeated and not first.repeated and again.stored
    assert chat_requests(fake) == asked + 1  # the engines ran once
    assert [m.text for m in service.get(cid)] == ["한국의 수도는?", first.text]
    other = service.send_text(cid, "한국의 수도는?", idempotency_key="q-2")  # a new key is a new turn
    assert not other.repeated and len(service.get(cid)) == 4


def test_a_repeated_spoken_turn_is_not_recognised_again(service, korean_wav):
    cid = service.create()
    clip = korean_wav("고마워요").read_bytes()
    first = service.send_audio(cid, clip, idempotency_key="spoken-1")
    assert first.stored, "espeak-ng's 고마워요 was not heard: the test needs a heard turn"
    again = service.send_audio(cid, clip, idempotency_key="spoken-1")
    assert len(service.recognizer.seconds) == 1  # recognised once
    assert again.repeated and (again.transcript, again.text, again.audio) == (first.transcript, first.text, first.audio)
    assert again.timings.asr_ms == 0 and again.timings.decode_ms == 0  # neither decoded nor recognised
    assert len(service.get(cid)) == 2


def test_a_streamed_repeat_streams_the_stored_answer(service):
    cid = service.create()
    first = service.stream_text(cid, "안녕", idempotency_key="s-1").result()
    events = list(service.stream_text(cid, "안녕", idempotency_key="s-1"))
    assert [type(e) for e in events] == [Heard, Sentence, SentenceAudio, Done]
    assert events[0].text == "안녕" and events[1] == Sentence(0, first.text)
    assert events[2].audio == first.audio and events[3].result.repeated
    assert len(service.get(cid)) == 2


def test_a_key_reused_for_another_question_is_refused(service):
    cid = service.create()
    service.send_text(cid, "첫 질문", idempotency_key="k")
    with pytest.raises(InvalidInput, match="already used for another question"):
        service.send_text(cid, "다른 질문", idempotency_key="k")
    with pytest.raises(InvalidInput, match="already used"):
        service.send_text(cid, "첫 질문", role="system", idempotency_key="k")
    assert len(service.get(cid)) == 2


@pytest.mark.parametrize("key", ["x" * 256, "공백 없는 한글", "has space", "tab\there"])
def test_a_malformed_key_is_refused_before_anything_runs(service, key):
    cid = service.create()
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        service.send_text(cid, "안녕", idempotency_key=key)
    assert service.get(cid) == []


def test_concurrent_retries_in_one_process_run_the_engines_once_fake_openai_server(service, fake):
    """A phone on a bad link sends the same question six times at once: one turn, one chat request."""
    cid = service.create()
    asked = chat_requests(fake)
    fake.delay_s = 1.0  # the first is still answering when the others arrive
    start = threading.Barrier(6)
    results = []

    def retry() -> None:
        start.wait()
        results.append(service.send_text(cid, "동시에", idempotency_key="burst"))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fake.delay_s = 0.0
    assert len(results) == 6 and len({(r.text, r.audio) for r in results}) == 1
    assert sorted(r.repeated for r in results) == [False] + [True] * 5
    assert chat_requests(fake) == asked + 1
    assert len(service.get(cid)) == 2


# --- over HTTP ---


@pytest.fixture(scope="module")
def server(openai_api, fake) -> tuple[str, Path]:
    """The session's server on the fake OpenAI chat engine (tests/conftest.py): (URL, DATA_DIR)."""
    return openai_api


def create(url: str) -> str:
    response = requests.post(f"{url}/create", json=SEED, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_retried_sends_over_http_keep_one_turn(server, korean_wav, stream):
    url, data_dir = server
    cid = create(url)
    rows = store_rows(data_dir)
    suffix = "/stream" if stream else ""
    clip = korean_wav("고마워요").read_bytes()
    sends = {
        "text": lambda key: requests.post(f"{url}/send/text/{cid}{suffix}", json={"message": "수도가 어디예요?"},
                                          headers={"Idempotency-Key": key}, timeout=120, stream=stream),
        "audio": lambda key: requests.post(f"{url}/send/audio/{cid}{suffix}", data=clip, timeout=120, stream=stream,
                                           headers={"Idempotency-Key": key, "Content-Type": "audio/wav"}),
    }
    for kind, send in sends.items():
        key = str(uuid.uuid4())
        answers = []
        for _ in range(3):
            response = send(key)
            assert response.status_code == 200, response.text
            answers.append(list(sse.events(response.iter_lines(decode_unicode=True)))[-1][1] if stream else response.json())
        assert [a["repeated"] for a in answers] == [False, True, True], kind
        assert len({(a["text"], a["audio"], a["transcript"]) for a in answers}) == 1, kind
    assert store_rows(data_dir) == (rows[0], rows[1] + 4)  # one turn per key
    assert len(requests.get(f"{url}/{cid}", timeout=30).json()) == 2 + 4


def test_a_malformed_key_over_http_is_400(server):
    url, data_dir = server
    cid = create(url)
    response = requests.post(f"{url}/send/text/{cid}", json={"message": "안녕"},
                             headers={"Idempotency-Key": "x" * 300}, timeout=30)
    assert response.status_code == 400 and response.json()["type"] == "InvalidInput"
    assert "Idempotency-Key" in response.json()["error"] and "x" * 41 not in response.text
    assert len(requests.get(f"{url}/{cid}", timeout=30).json()) == 2
