"""Who waits for whom, in the service both front doors call: one admission gate for spoken
turns (page and REST alike) that covers recognition only; a lock per conversation, so turns
on one conversation take turns and turns on different ones never wait for each other; the
history read as text only.

The chat engine is a FAKE OpenAI-compatible server (OpenAI cannot be reached here) that holds
each request until the test lets it go, so a test decides when an answer is written instead
of timing anything. The recognizer is a fake (tests/fakes.py: the gate's logic does not
depend on what is heard); espeak-ng and SQLite are real.
"""

from __future__ import annotations

import threading
import time
import zlib

import pytest

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from voiceqna.compose import build_service
from voiceqna.engines import store_sqlite
from voiceqna.errors import Overloaded
from voiceqna.page.audio_files import AudioFiles
from voiceqna.page.handlers import PageHandlers
from voiceqna.ports import Heard
from voiceqna.service import Limits

DEADLINE_S = 120.0
"""How long a test waits for something that must happen before calling it lost (not a timing check)."""


@pytest.fixture
def fake():
    server = FakeOpenAI(answer="네, 알겠어요.", hold=threading.Event())
    yield server
    server.hold.set()
    server.close()


@pytest.fixture
def service(fake, tmp_path, fake_recognizer):
    """One spoken turn recognised at a time, none waiting: the gate holds exactly one."""
    settings = make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="unused",
                             openai_base_url=fake.base_url, tts_engine="none")
    service = build_service(settings, recognizer=fake_recognizer)
    service.limits = Limits(recognitions_at_once=1, max_waiting_recognitions=0)
    service.gate = type(service.gate)(1, 0)
    return service


def after_turn(updates):
    """The page as a streamed turn leaves it: its last update."""
    return list(updates)[-1]


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {DEADLINE_S:.0f} s"
        time.sleep(0.02)


def chat_questions(fake: FakeOpenAI) -> list[str]:
    """The question of each chat request the fake received, in arrival order."""
    return [r["messages"][-1]["content"] for r in fake.requests if r["path"].endswith("/chat/completions")]


# --- one gate, for recognition only ---


def test_a_spoken_turn_from_the_page_is_load_shed_like_a_rest_one(service, fake, korean_wav, tmp_path):
    """With the recognizer's places all taken, the page gets the same busy warning as a REST
    client's 503, stores nothing, and is answered once a place is free."""
    handlers = PageHandlers(service, AudioFiles(tmp_path / "audio"))
    clip = korean_wav("고마워요")
    conversation_id = service.create()
    in_flight = service.gate.reserve()  # another spoken turn holds the one place
    try:
        update = after_turn(handlers.stream_audio(conversation_id, [], str(clip)))
        assert "서버가 바빠요" in update.error and "busy" in update.error and "nothing was stored" in update.error
        assert service.get(conversation_id) == [] and update.chat == []
    finally:
        in_flight.release()
    fake.hold.set()  # the chat engine answers at once from here on
    update = after_turn(handlers.stream_audio(conversation_id, [], str(clip)))
    assert update.error == "" and len(service.get(conversation_id)) == 2


def test_the_gate_covers_recognition_only_not_a_slow_chat_engine_fake_openai_server(service, fake, korean_wav):
    """Turn A is recognised and then waits for a slow chat engine; meanwhile turn B is admitted
    and recognised, though the gate has a single place."""
    clip = korean_wav("고마워요").read_bytes()
    first, second = service.create(), service.create()
    a = service.stream_audio(first, clip)
    assert isinstance(a.next_event(timeout=DEADLINE_S), Heard)  # A's recognition is over
    wait_for(lambda: len(chat_questions(fake)) == 1, "A's question reaching the chat engine")
    b = service.stream_audio(second, clip)  # Overloaded here if A's chat still held the place
    assert isinstance(b.next_event(timeout=DEADLINE_S), Heard)
    fake.hold.set()
    assert a.result().stored and b.result().stored
    assert len(service.get(first)) == len(service.get(second)) == 2


def test_a_full_gate_refuses_at_once_and_frees_its_place_after_recognition(service, korean_wav):
    clip = korean_wav("고마워요").read_bytes()
    first, second = service.create(), service.create()
    in_flight = service.gate.reserve()
    with pytest.raises(Overloaded, match="busy"):
        service.stream_audio(first, clip)
    in_flight.release()
    a = service.stream_audio(first, clip)
    assert isinstance(a.next_event(timeout=DEADLINE_S), Heard)
    service.stream_audio(second, clip).close()  # admitted: the gate let A's place go after recognition


# --- a lock per conversation ---


def stripe(conversation_id: str) -> int:
    """Which of the 64 striped locks the service used before per-conversation locks."""
    return zlib.crc32(conversation_id.encode()) % 64


def test_turns_on_different_conversations_do_not_wait_for_each_other_fake_openai_server(service, fake):
    """A's answer is held at the chat engine; B's question still reaches it. The two ids are
    chosen to share a stripe of the old 64 striped locks, where B waited for A."""
    first = service.create()
    second = next(cid for cid in iter(service.create, None) if stripe(cid) == stripe(first))
    a = service.stream_text(first, "첫 번째 대화의 질문")
    wait_for(lambda: chat_questions(fake) == ["첫 번째 대화의 질문"], "A's question reaching the chat engine")
    b = service.stream_text(second, "두 번째 대화의 질문")
    wait_for(lambda: len(chat_questions(fake)) == 2, "B's question reaching the chat engine while A is held")
    fake.hold.set()
    assert a.result().text == b.result().text == "네, 알겠어요."
    assert [m.text for m in service.get(second)] == ["두 번째 대화의 질문", "네, 알겠어요."]


def test_turns_on_one_conversation_keep_their_order_fake_openai_server(service, fake):
    """The second question waits for the first answer, and the chat engine sees that answer in
    the second question's history."""
    cid = service.create()
    first = service.stream_text(cid, "첫 질문")
    wait_for(lambda: chat_questions(fake) == ["첫 질문"], "the first question reaching the chat engine")
    second = service.stream_text(cid, "둘째 질문")
    fake.hold.set()
    assert first.result().stored and second.result().stored
    assert [m.text for m in service.get(cid)] == ["첫 질문", "네, 알겠어요.", "둘째 질문", "네, 알겠어요."]
    last = [r for r in fake.requests if r["path"].endswith("/chat/completions")][-1]
    assert [m["content"] for m in last["messages"][1:]] == ["첫 질문", "네, 알겠어요.", "둘째 질문"]
    assert len(service.locks) == 0  # no lock is kept for a conversation with nothing running


# --- the history is text ---


class TracedConnection(store_sqlite._Connection):
    """The real SQLite connection, with every statement it runs recorded (SQLite's trace hook)."""

    statements: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.set_trace_callback(TracedConnection.statements.append)


def test_a_spoken_turn_reads_no_audio_from_the_store(fake, tmp_path, fake_recognizer, korean_wav, monkeypatch):
    monkeypatch.setattr(store_sqlite, "_Connection", TracedConnection)
    settings = make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="unused",
                             openai_base_url=fake.base_url)
    service = build_service(settings, recognizer=fake_recognizer)
    fake.hold.set()
    cid = service.create()
    clip = korean_wav("고마워요").read_bytes()
    service.send_audio(cid, clip)  # the conversation now holds a recording and a spoken answer
    TracedConnection.statements.clear()
    turn = service.send_audio(cid, clip)
    assert turn.stored
    reads = [s for s in TracedConnection.statements if s.lstrip().upper().startswith("SELECT")]
    assert reads and not [s for s in reads if "audio" in s.lower()], reads
    assert [s for s in TracedConnection.statements if s.startswith("INSERT INTO messages")]  # audio is written
