"""Many clients at once against a real server on loopback: every conversation keeps exactly its
turns; spoken turns beyond the queue are refused at once (503 + Retry-After), not left hanging;
slow and stalled clients hold up nobody and are cut off after BODY_TIMEOUT_S."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from benchmarks.load import plan, run_load, text_of
from tests.fake_openai import FakeOpenAI
from tests.live_server import live_api, store_rows
from tests.tiers import tier
from voiceqna.config import PROJECT_ROOT

SEED = {"messages": ["안녕하세요", "반가워요"], "roles": ["user", "assistant"], "audios": ["", ""]}


# --- load: 20 conversations at once, text and speech ---


@pytest.fixture(scope="module")
def load_url(api_url) -> str:
    """The session's app on its defaults (tests/conftest.py): real Whisper, offline chat engine,
    espeak-ng, SQLite."""
    return api_url


def test_20_conversations_at_once_keep_exactly_their_turns(load_url):
    conversations, turns, audio_every = 20, 3, 6  # 60 turns, 10 of them spoken
    report = run_load(load_url, conversations, turns, audio_every, timeout_s=600, request_timeout_s=300)
    assert report.errors == {} and report.turns_not_run == 0
    assert report.turns_ok == 60 and report.audio_turns_ok == 10
    assert report.audio_turns_not_heard < report.audio_turns_ok  # spoken turns really were heard and kept
    assert report.integrity_problems == [] and report.healthy_after
    # Our own look at what the server holds: whole turns, typed questions in the order they were sent.
    kinds = plan(conversations, turns, audio_every)
    assert len(report.conversation_ids) == conversations
    for number, conversation_id in enumerate(report.conversation_ids):
        messages = requests.get(f"{load_url}/{conversation_id}", timeout=60).json()
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        typed = [m["message"] for m in messages[::2] if m["message"].startswith("부하 시험")]
        assert typed == [text_of(number, t) for t, kind in enumerate(kinds[number]) if kind == "text"]
        assert len(messages) // 2 <= turns


def test_load_script_runs_from_the_command_line_and_writes_its_report(load_url, tmp_path):
    out = tmp_path / "load.json"
    result = subprocess.run([sys.executable, "benchmarks/load.py", "--url", load_url, "--conversations", "3",
                             "--turns", "2", "--audio-every", "0", "--json", str(out)],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6/6 turns answered" in result.stdout and "turns/s" in result.stdout and "p95" in result.stdout
    report = json.loads(out.read_text())
    assert report["turns_ok"] == 6 and report["errors"] == {} and report["integrity_problems"] == []


def test_load_script_refuses_a_server_that_is_not_on_loopback():
    result = subprocess.run([sys.executable, "benchmarks/load.py", "--url", "http://10.255.255.1:5000"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not on loopback" in result.stderr


# --- shedding load and slow clients ---


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI(answer="네, 알겠어요.")
    yield server
    server.close()


@pytest.fixture(scope="module")
@tier("server")
def small_server(fake, tmp_path_factory):
    """Room for 2 spoken turns at once plus 1 waiting; request bodies must arrive within 15 s;
    the chat engine is a FAKE OpenAI-compatible server (so a test can make it slow)."""
    data_dir = tmp_path_factory.mktemp("small") / "data"
    with live_api(data_dir, max_waiting_audio_turns="1", whisper_workers="1", body_timeout_s="15",
                  chat_engine="openai", openai_api_key="unused", openai_base_url=fake.base_url,
                  tts_engine="none") as url:
        yield url, data_dir


def create(url: str) -> str:
    response = requests.post(f"{url}/create", json=SEED, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


LONG_QUESTION = "안녕하세요, 오늘 서울의 날씨가 어떤지 그리고 내일은 비가 올지 자세히 알려 주시겠어요?"
"""About six seconds of espeak-ng speech: each recognition keeps its place at the gate a while."""


def test_spoken_turns_beyond_the_queue_get_503_with_retry_after(small_server, korean_wav):
    """Eight spoken turns arrive at once; the gate has 3 places (2 recognised at a time, 1
    waiting) and a place is held while a recording is recognised (not while its answer is
    written), so the turns that arrive while three recognitions are under way get 503."""
    url, _ = small_server
    clip = korean_wav(LONG_QUESTION).read_bytes()
    ids = [create(url) for _ in range(8)]
    start = threading.Barrier(len(ids))
    answers: dict[str, requests.Response] = {}

    def speak(conversation_id: str) -> None:
        start.wait()
        answers[conversation_id] = requests.post(f"{url}/send/audio/{conversation_id}", data=clip,
                                                 headers={"Content-Type": "audio/wav"}, timeout=300)

    threads = [threading.Thread(target=speak, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers.values())
    assert set(statuses) <= {200, 503} and 503 in statuses and 200 in statuses, statuses
    for conversation_id, response in answers.items():
        held = requests.get(f"{url}/{conversation_id}", timeout=30).json()
        if response.status_code == 503:
            body = response.json()
            assert body["type"] == "Overloaded" and "busy" in body["error"] and "nothing was stored" in body["error"]
            assert response.headers["retry-after"].isdigit()
            assert len(held) == 2  # as created
        else:
            assert len(held) == 2 + 2 * response.json()["stored"]
    # the queue drains: a client that retries is answered
    retry = requests.post(f"{url}/send/audio/{ids[0]}", data=clip, headers={"Content-Type": "audio/wav"}, timeout=300)
    assert retry.status_code == 200, retry.text


def test_slow_uploads_hold_no_place_at_the_gate(small_server, korean_wav):
    """67 clients trickle their recordings in (a few bytes a second): while they do, a spoken
    turn that has arrived whole is admitted and answered — the gate (3 places here) counts
    recognitions, not uploads."""
    url, data_dir = small_server
    conversation_id = create(url)
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /send/audio/{conversation_id} HTTP/1.1\r\nHost: test\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: 100000\r\n\r\nRIFF").encode()
    tricklers = []
    for _ in range(67):
        sock = socket.create_connection((host, int(port)), timeout=120)
        sock.sendall(head)
        tricklers.append(sock)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for sock in tricklers:
                try:
                    sock.send(b"\x00")
                except OSError:
                    pass

    threading.Thread(target=trickle, daemon=True).start()
    try:
        answer = requests.post(f"{url}/send/audio/{conversation_id}", data=korean_wav("고마워요").read_bytes(),
                               headers={"Content-Type": "audio/wav"}, timeout=120)
        assert answer.status_code == 200, answer.text
        # The uploads were still coming in all along: none has been answered (or cut off) yet.
        assert select.select(tricklers, [], [], 0)[0] == [], "a trickling upload ended before the spoken turn"
    finally:
        stop.set()
        for sock in tricklers:
            sock.close()
    assert len(requests.get(f"{url}/{conversation_id}", timeout=30).json()) == 2 + 2 * answer.json()["stored"]


def test_a_slow_chat_engine_holds_no_place_at_the_gate_fake_openai_server(small_server, fake, korean_wav):
    """Three spoken turns are recognised and then wait for a chat engine that does not answer:
    a fourth is still admitted (the gate has 3 places), recognised, and answered in its turn."""
    url, _ = small_server
    clip = korean_wav("고마워요").read_bytes()
    ids = [create(url) for _ in range(4)]
    answers: dict[str, requests.Response] = {}
    asked = len(fake.requests)

    def speak(conversation_id: str) -> None:
        answers[conversation_id] = requests.post(f"{url}/send/audio/{conversation_id}", data=clip,
                                                 headers={"Content-Type": "audio/wav"}, timeout=300)

    def wait_for_chat_requests(count: int) -> None:
        deadline = time.monotonic() + 120  # a deadline for something that must happen, not a timing check
        while len(fake.requests) - asked < count and len(answers) < 4:
            assert time.monotonic() < deadline, f"{count} turns never reached the chat engine"
            time.sleep(0.05)

    fake.hold = threading.Event()
    threads = [threading.Thread(target=speak, args=(i,)) for i in ids]
    try:
        for t in threads[:3]:
            t.start()
        wait_for_chat_requests(3)  # three recognised turns, all waiting for the chat engine
        threads[3].start()
        wait_for_chat_requests(4)  # the fourth got past the gate and the recognizer too
        assert not answers, {i: r.text for i, r in answers.items()}  # nobody was turned away meanwhile
    finally:
        fake.hold.set()
        for t in threads:
            t.join()
        fake.hold = None
    assert sorted(r.status_code for r in answers.values()) == [200] * 4


def read_response(sock: socket.socket) -> tuple[int, dict]:
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without an answer"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    headers = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
    length = int({k.lower(): v for k, v in headers.items()}[b"content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_slow_and_stalled_clients_hold_up_nobody_and_get_408(small_server):
    url, data_dir = small_server
    conversation_id = create(url)
    before = store_rows(data_dir)
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /send/text/{conversation_id} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()

    def connect(data: bytes) -> socket.socket:
        sock = socket.create_connection((host, int(port)), timeout=120)
        sock.sendall(data)
        return sock

    stalled = [connect(head + b'{"message": "') for _ in range(30)]  # a part of the body, then nothing
    half_headers = [connect(b"POST /create HTTP/1.1\r\nHost: test\r\n") for _ in range(30)]  # headers never end
    trickler = connect(head)
    stop = threading.Event()

    def trickle() -> None:  # one byte every 0.1 s: the whole body would take 100 s
        for byte in b'{"message": "' + b"a" * 987:
            if stop.wait(0.1):
                return
            try:
                trickler.send(bytes([byte]))
            except OSError:
                return

    threading.Thread(target=trickle, daemon=True).start()
    try:
        for _ in range(5):  # meanwhile, other clients are answered
            other = create(url)
            answer = requests.post(f"{url}/send/text/{other}", json={"message": "안녕"}, timeout=60)
            assert answer.status_code == 200 and answer.json()["text"] == "네, 알겠어요."
            assert len(requests.get(f"{url}/{other}", timeout=30).json()) == 4
        assert select.select(stalled + [trickler], [], [], 0)[0] == [], "a slow client was answered too early"
        for sock in stalled + [trickler]:  # then each slow one is cut off with a clear 408
            status, body = read_response(sock)
            assert status == 408 and body["type"] == "RequestTimeout" and "BODY_TIMEOUT_S" in body["error"]
    finally:
        stop.set()
        for sock in stalled + half_headers + [trickler]:
            sock.close()
    assert len(requests.get(f"{url}/{conversation_id}", timeout=30).json()) == 2
    assert store_rows(data_dir) == (before[0] + 5, before[1] + 5 * 4)  # only the other clients' conversations
    assert requests.get(f"{url}/health", timeout=30).status_code == 200
