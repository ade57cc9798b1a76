"""The streaming routes over HTTP against a real server (python app.py --api-only on loopback):
Server-Sent Events in order, `done` equal to the non-streaming route's JSON, errors before the
stream as statuses and after it as an `error` event, the Python client of README, and
RemoteService. Answers come from a FAKE OpenAI-compatible chat server that streams."""

from __future__ import annotations

import base64
import subprocess
import sys
import time

import pytest
import requests

from tests.live_server import API_KEY
from voiceqna import sse
from voiceqna.config import PROJECT_ROOT
from voiceqna.errors import NotFound
from voiceqna.evaluation.clips import seconds
from voiceqna.ports import Done, Heard, Sentence, SentenceAudio
from voiceqna.remote import RemoteService
from voiceqna.textnorm import compact

ANSWER = "부산까지는 케이티엑스로 두 시간 반쯤 걸려요. 버스를 타면 네 시간 넘게 걸리니 기차를 추천해요."
UNKNOWN_ID = "0123456789abcdef01234567"


@pytest.fixture(scope="module")
def fake(openai_fake):
    yield openai_fake.reset(answer=ANSWER, tokens_per_s=80)
    openai_fake.reset()


@pytest.fixture(scope="module")
def url(openai_api, fake) -> str:
    """The session's server on the fake OpenAI chat engine (tests/conftest.py), answering ANSWER."""
    return openai_api[0]


def create(url: str, **kwargs) -> str:
    return requests.post(f"{url}/create", json={}, timeout=10, **kwargs).json()["id"]


def stream_text(url: str, conversation_id: str, message: str, **kwargs) -> requests.Response:
    return requests.post(f"{url}/send/text/{conversation_id}/stream", json={"message": message, "role": "user"},
                         stream=True, timeout=60, **kwargs)


def test_text_stream_sends_events_in_order_and_done_is_the_whole_routes_json(url):
    cid = create(url)
    with stream_text(url, cid, "부산까지 얼마나 걸려요?") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse.events(response.iter_lines(decode_unicode=True)))
    kinds = [name for name, _ in events]
    assert kinds[0] == "transcript" and events[0][1] == {"text": "부산까지 얼마나 걸려요?"}
    assert kinds[-1] == "done" and kinds[1:-1] == ["sentence", "audio"] * ((len(kinds) - 2) // 2)
    sentences = [data for name, data in events if name == "sentence"]
    audios = [data for name, data in events if name == "audio"]
    assert [s["index"] for s in sentences] == [a["index"] for a in audios] == list(range(len(sentences)))
    assert all(base64.b64decode(a["audio"])[:4] == b"RIFF" for a in audios)

    done = events[-1][1]
    whole = requests.post(f"{url}/send/text/{cid}", json={"message": "부산까지 얼마나 걸려요?", "role": "user"},
                          timeout=60).json()
    assert set(done) == set(whole)
    assert {k: v for k, v in done.items() if k != "timings_ms"} == {k: v for k, v in whole.items()
                                                                     if k != "timings_ms"}
    assert set(done["timings_ms"]) == set(whole["timings_ms"]) >= {"first_token", "first_audio", "total"}
    assert done["text"] == ANSWER
    stored = requests.get(f"{url}/{cid}", timeout=10).json()
    assert [m["message"] for m in stored] == ["부산까지 얼마나 걸려요?", ANSWER] * 2


def test_audio_stream_hears_the_recording_first(url, read_speech):
    clip = read_speech[0]
    cid = create(url)
    with requests.post(f"{url}/send/audio/{cid}/stream", files={"audio": ("q.wav", clip.path.read_bytes())},
                       stream=True, timeout=120) as response:
        events = list(sse.events(response.iter_lines(decode_unicode=True)))
    assert events[0][0] == "transcript" and compact(events[0][1]["text"])[:4] == compact(clip.text)[:4]
    assert events[-1][0] == "done" and events[-1][1]["transcript"] == events[0][1]["text"]
    assert len(requests.get(f"{url}/{cid}", timeout=10).json()) == 2


@pytest.mark.parametrize("route, kwargs, status, kind", [
    (f"send/text/{UNKNOWN_ID}/stream", {"json": {"message": "안녕"}}, 404, "NotFound"),
    ("send/text/{cid}/stream", {"data": "{not json"}, 400, "InvalidInput"),
    ("send/text/{cid}/stream", {"json": {"message": 5}}, 422, "InvalidInput"),
    ("send/audio/{cid}/stream", {"data": b"x" * (2 * 1024 * 1024), "headers": {"Content-Type": "audio/wav"}},
     413, "AudioTooLarge"),
    ("send/audio/{cid}/stream", {"data": b"not audio" * 50, "headers": {"Content-Type": "audio/wav"}},
     415, "BadAudio"),
])
def test_errors_before_the_stream_starts_are_json_with_their_status(url, route, kwargs, status, kind):
    cid = create(url)
    response = requests.post(f"{url}/{route.format(cid=cid)}", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["type"] == kind and response.json()["status"] == status
    assert requests.get(f"{url}/{cid}", timeout=10).json() == []


def test_an_error_after_the_start_is_an_error_event_and_nothing_is_stored(locked_api_url):
    headers = {"X-API-Key": API_KEY}
    cid = create(locked_api_url, headers=headers)  # that server's chat engine is down
    with stream_text(locked_api_url, cid, "안녕하세요", headers=headers) as response:
        assert response.status_code == 200
        events = list(sse.events(response.iter_lines(decode_unicode=True)))
    assert [name for name, _ in events] == ["transcript", "error"]
    assert events[1][1]["status"] == 503 and events[1][1]["type"] == "EngineUnavailable"
    assert "chat engine" in events[1][1]["error"]
    assert requests.get(f"{locked_api_url}/{cid}", headers=headers, timeout=10).json() == []


def test_stream_routes_need_the_key_like_the_others(locked_api_url):
    response = stream_text(locked_api_url, UNKNOWN_ID, "안녕")
    assert response.status_code == 401 and response.json()["type"] == "Unauthorized"


def test_both_stream_routes_are_in_the_docs(url):
    paths = requests.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    for path in ("/send/text/{conversation_id}/stream", "/send/audio/{conversation_id}/stream"):
        assert "text/event-stream" in paths[path]["post"]["responses"]["200"]["content"]


def test_the_python_client_of_the_readme_plays_each_sentence(url, tmp_path):
    out = tmp_path / "answer"
    run = subprocess.run([sys.executable, str(PROJECT_ROOT / "clients" / "python" / "stream_turn.py"),
                          "--url", url, "--text", "부산까지 얼마나 걸려요?", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "heard: 부산까지 얼마나 걸려요?" in run.stdout and "done: stored=True" in run.stdout
    wavs = sorted(out.glob("sentence-*.wav"))
    assert len(wavs) >= 2 and all(seconds(w.read_bytes()) > 0.5 for w in wavs)


def test_remote_service_streams_over_the_api(url):
    remote = RemoteService(url)
    cid = remote.create()
    events = list(remote.stream_text(cid, "부산까지 얼마나 걸려요?"))
    assert isinstance(events[0], Heard) and isinstance(events[-1], Done)
    assert any(isinstance(e, Sentence) for e in events) and any(isinstance(e, SentenceAudio) for e in events)
    assert events[-1].result.text == ANSWER
    with pytest.raises(NotFound):
        remote.stream_text(UNKNOWN_ID, "안녕")
    assert [m.text for m in remote.get(cid)] == ["부산까지 얼마나 걸려요?", ANSWER]
    remote.close()


def test_a_client_that_hangs_up_mid_answer_finds_the_turn_stored_whole(url):
    cid = create(url)
    with stream_text(url, cid, "부산까지 얼마나 걸려요?") as response:
        next(response.iter_lines())  # the first line arrived; then the game lost its connection
    deadline = time.monotonic() + 60
    while len(stored := requests.get(f"{url}/{cid}", timeout=10).json()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [m["message"] for m in stored] == ["부산까지 얼마나 걸려요?", ANSWER]
