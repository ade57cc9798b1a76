"""Streamed turns in the service: events in order, the turn stored once and whole, readers that
go away or cut the answer short, errors before and after the stream starts.

The chat answers come from a FAKE OpenAI-compatible server (OpenAI cannot be reached here)
that streams tokens at a set pace; speech is the real espeak-ng, the store a real SQLite file,
recognition a fake (tests/fakes.py) but for one spoken turn through the real Whisper model.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from voiceqna.audio import encode_wav
from voiceqna.compose import build_service
from voiceqna.errors import BadAudio, EngineUnavailable, InvalidInput, NotFound, Overloaded
from voiceqna.evaluation.clips import seconds
from voiceqna.ports import Done, Heard, Sentence, SentenceAudio
from voiceqna.service import INTERRUPTED_MARK, NOT_HEARD
from voiceqna.textnorm import compact, spoken

ANSWER = (
    "서울의 오늘 기온은 영하 삼 도예요. 내일은 더 추워진다고 하니 따뜻하게 입고 나가세요. "
    "외출할 때는 목도리와 장갑을 꼭 챙기시고 빙판길을 조심하세요."
)


@pytest.fixture
def fake():
    server = FakeOpenAI(answer=ANSWER, tokens_per_s=60)
    yield server
    server.close()


def build(tmp_path, fake, recognizer):
    settings = make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="fake",
                             openai_base_url=fake.base_url)
    return build_service(settings, recognizer=recognizer)


@pytest.fixture
def service(tmp_path, fake, fake_recognizer):
    return build(tmp_path, fake, fake_recognizer)


def names(events) -> list[str]:
    return [event.name for event in events]


def test_events_come_in_order_and_the_turn_is_stored_once_whole(service):
    cid = service.create()
    events = list(service.stream_text(cid, "오늘 날씨 어때요?"))

    assert names(events)[0] == "transcript" and events[0].text == "오늘 날씨 어때요?"
    assert names(events)[-1] == "done"
    middle = names(events)[1:-1]
    assert len(middle) >= 4 and middle == ["sentence", "audio"] * (len(middle) // 2)
    sentences = [e for e in events if isinstance(e, Sentence)]
    audios = [e for e in events if isinstance(e, SentenceAudio)]
    assert [s.index for s in sentences] == [a.index for a in audios] == list(range(len(sentences)))
    assert compact(" ".join(s.text for s in sentences)) == compact(ANSWER)  # nothing lost, nothing doubled

    result = events[-1].result
    assert result.text == ANSWER and result.stored and not result.interrupted
    assert result.timings.first_token_ms > 0 and result.timings.first_audio_ms > result.timings.first_token_ms
    stored = service.get(cid)
    assert [(m.role, m.text) for m in stored] == [("user", "오늘 날씨 어때요?"), ("assistant", ANSWER)]
    assert stored[1].audio == result.audio
    assert seconds(result.audio) == pytest.approx(sum(seconds(a.audio) for a in audios), abs=0.05)


def test_the_first_sentence_is_spoken_while_the_rest_is_still_being_written(tmp_path, fake_recognizer):
    slow = FakeOpenAI(answer=ANSWER, first_token_s=0.2, tokens_per_s=15)
    try:
        service = build_service(make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="fake",
                                              openai_base_url=slow.base_url), recognizer=fake_recognizer)
        first_audio_at = None
        for event in service.stream_text(service.create(), "날씨 어때요?"):
            if isinstance(event, SentenceAudio) and first_audio_at is None:
                first_audio_at = time.monotonic()
        assert first_audio_at is not None
        assert first_audio_at < slow.last_tokens_at[0], "the first audio came only after the whole answer"
    finally:
        slow.close()


def test_the_whole_call_is_the_stream_played_through(service):
    cid = service.create()
    whole = service.send_text(cid, "날씨 어때요?")
    streamed = service.stream_text(cid, "날씨 어때요?").result()
    assert (whole.text, whole.audio, whole.transcript) == (streamed.text, streamed.audio, streamed.transcript)
    assert len(service.get(cid)) == 4


def test_a_reader_that_goes_away_does_not_lose_the_turn(service):
    cid = service.create()
    stream = service.stream_text(cid, "날씨 어때요?")
    for event in stream:
        if isinstance(event, SentenceAudio):
            break  # the client hung up after the first sentence
    stream.thread.join(timeout=60)
    assert not stream.thread.is_alive()
    assert [(m.role, m.text) for m in service.get(cid)] == [("user", "날씨 어때요?"), ("assistant", ANSWER)]


def test_a_reader_that_went_away_does_not_hold_up_the_next_turn(service):
    cid = service.create()
    first = service.stream_text(cid, "첫 질문")
    first.next_event()  # one event read, then the client is gone
    first.close()
    second = service.stream_text(cid, "두 번째 질문")
    done = threading.Event()
    threading.Thread(target=lambda: (second.result(), done.set()), daemon=True).start()
    assert done.wait(60), "the second turn waited for a reader that had gone"
    assert [m.text for m in service.get(cid)] == ["첫 질문", ANSWER, "두 번째 질문", ANSWER]


def test_barge_in_stores_what_was_played_marked_and_stops_the_engine(service, fake):
    cid = service.create()
    stream = service.stream_text(cid, "날씨 어때요?")
    first = None
    for event in stream:
        if isinstance(event, Sentence) and first is None:
            first = event.text
        if isinstance(event, SentenceAudio):
            stream.interrupt(played=1)
            break
    result = stream.result()
    assert result.interrupted and result.text == first + INTERRUPTED_MARK
    stored = service.get(cid)
    assert stored[1].text == first + INTERRUPTED_MARK
    assert seconds(stored[1].audio) == pytest.approx(seconds(result.audio)) and seconds(result.audio) > 0.5
    assert compact(stored[1].text) != compact(ANSWER)


def test_errors_found_before_the_stream_are_raised_at_once(service):
    with pytest.raises(NotFound):
        service.stream_text("0123456789abcdef01234567", "안녕")
    with pytest.raises(InvalidInput):
        service.stream_text(service.create(), "   ")
    with pytest.raises(BadAudio):
        service.stream_audio(service.create(), b"not audio at all" * 100)


def test_a_full_recognizer_queue_refuses_at_once(service, read_speech):
    data = read_speech[0].path.read_bytes()
    tickets = [service.gate.reserve() for _ in range(service.gate.capacity)]
    try:
        with pytest.raises(Overloaded):
            service.stream_audio(service.create(), data)
    finally:
        for ticket in tickets:
            ticket.release()
    assert service.stream_audio(service.create(), data).result().stored


def test_an_engine_failure_after_the_start_is_an_error_event_and_nothing_is_stored(service, fake):
    fake.fail_with = 500
    cid = service.create()
    events = list(service.stream_text(cid, "안녕"))
    assert names(events) == ["transcript", "error"]
    assert isinstance(events[-1].error, EngineUnavailable)
    assert service.get(cid) == []


def test_a_spoken_turn_streams_what_was_heard_first(tmp_path, fake, recognizer, read_speech):
    service = build(tmp_path, fake, recognizer)
    clip = read_speech[0]
    cid = service.create()
    events = list(service.stream_audio(cid, clip.path.read_bytes()))
    assert isinstance(events[0], Heard) and compact(events[0].text)[:4] == compact(clip.text)[:4]
    assert isinstance(events[-1], Done)
    user = service.get(cid)[0]
    assert user.text == events[0].text and seconds(user.audio) == pytest.approx(seconds(clip.path.read_bytes()),
                                                                               abs=0.05)


def test_silence_streams_the_apology_and_stores_nothing(service):
    cid = service.create()
    events = list(service.stream_audio(cid, encode_wav(np.zeros(32_000, np.float32))))
    assert names(events) == ["transcript", "sentence", "audio", "done"]
    assert events[0].text == "" and events[1].text == NOT_HEARD and not events[-1].result.stored
    assert service.get(cid) == []


def test_a_failed_stream_raises_its_error_from_result(service, fake):
    fake.fail_with = 503
    stream = service.stream_text(service.create(), "안녕")
    with pytest.raises(EngineUnavailable, match="chat engine"):
        stream.result()
    assert stream.finished


def test_openai_speech_is_asked_for_wav_one_sentence_at_a_time_fake_openai_server(tmp_path, fake_recognizer, fake):
    settings = make_settings(tmp_path / "data", chat_engine="openai", openai_api_key="fake",
                             openai_base_url=fake.base_url, tts_engine="openai")
    service = build_service(settings, recognizer=fake_recognizer)
    events = list(service.stream_text(service.create(), "내일 날씨는요?"))
    sentences = [e.text for e in events if isinstance(e, Sentence)]
    asked = [r for r in fake.requests if r["path"].endswith("/audio/speech")]  # one fake serves both stages
    assert len(sentences) >= 2 and len(asked) == len(sentences)
    assert [r["response_format"] for r in asked] == ["wav"] * len(sentences)
    assert [r["input"] for r in asked] == [spoken(s) for s in sentences]  # read the Korean way
    assert all(seconds(e.audio) == pytest.approx(1.0) for e in events if isinstance(e, SentenceAudio))


def test_an_answer_cut_off_by_the_chat_server_is_an_error_not_a_half_answer_fake_openai_server(service, fake):
    fake.fail_after_tokens = 12  # the server's connection drops mid-answer, without an error status
    cid = service.create()
    events = list(service.stream_text(cid, "날씨 어때요?"))
    assert names(events)[-1] == "error" and "middle of its answer" in str(events[-1].error)
    assert service.get(cid) == []  # nothing of the half answer is stored
