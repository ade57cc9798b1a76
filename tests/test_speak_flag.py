"""The streamed turn's `speak=False` (the page's browser voice): text only, each sentence with its
spoken form, no speech engine called, no answer audio stored — and the default still speaks.
No model is loaded: the chat engine is the offline knowledge base, the store a real SQLite file."""

from __future__ import annotations

import numpy as np
import pytest

from voiceqna.audio import encode_wav
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.ports import Done, Sentence, SentenceAudio, Transcript
from voiceqna.service import NOT_HEARD, ChatService
from voiceqna.textnorm import spoken


class CountingSynthesizer:
    """A stand-in speech engine that counts its calls (one short silent WAV each)."""

    description = "counting"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def synthesize(self, text: str) -> bytes:
        self.calls.append(text)
        return encode_wav(np.zeros(1600, np.float32))

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


class FixedRecognizer:
    """A stand-in recognizer (no model here) that hears `text` in any recording."""

    description = "fixed"

    def __init__(self, text: str = "") -> None:
        self.text = text

    def transcribe(self, samples):
        return Transcript(self.text)


class OneSentenceChat:
    """Answers with numbers and an acronym, so the spoken form differs from the text."""

    description = "fixed"

    def stream(self, history, question):
        yield from ("KTX는 2026년에 ", "3시에 출발해요. ", "표는 5000원이에요.")

    def warm_up(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def synthesizer() -> CountingSynthesizer:
    return CountingSynthesizer()


@pytest.fixture
def service(settings, synthesizer) -> ChatService:
    return ChatService(FixedRecognizer(), OneSentenceChat(), synthesizer, SQLiteStore(settings.sqlite_path),
                       speech_text=spoken)


def test_a_text_turn_without_speech_calls_no_synthesizer_and_stores_no_audio(service, synthesizer):
    cid = service.create()
    events = list(service.stream_text(cid, "기차 언제 떠나요?", speak=False))

    sentences = [e for e in events if isinstance(e, Sentence)]
    assert not [e for e in events if isinstance(e, SentenceAudio)]
    assert synthesizer.calls == []
    assert [s.text for s in sentences] == ["KTX는 2026년에 3시에 출발해요.", "표는 5000원이에요."]
    assert [s.spoken for s in sentences] == [spoken(s.text) for s in sentences]
    assert "케이티엑스" in sentences[0].spoken and "이천이십육" in sentences[0].spoken and "세 시" in sentences[0].spoken
    result = events[-1].result
    assert isinstance(events[-1], Done) and result.audio == b"" and result.timings.tts_ms == 0
    stored = service.get(cid)
    assert [(m.role, m.text, m.audio) for m in stored] == [
        ("user", "기차 언제 떠나요?", b""), ("assistant", "KTX는 2026년에 3시에 출발해요. 표는 5000원이에요.", b"")]


def test_by_default_the_same_turn_is_spoken_by_the_server(service, synthesizer):
    cid = service.create()
    events = list(service.stream_text(cid, "기차 언제 떠나요?"))
    assert len([e for e in events if isinstance(e, SentenceAudio)]) == 2
    assert synthesizer.calls == [spoken("KTX는 2026년에 3시에 출발해요."), spoken("표는 5000원이에요.")]
    assert all(e.spoken is None for e in events if isinstance(e, Sentence))
    assert service.get(cid)[1].audio != b""


def test_a_held_turn_cut_short_without_speech_stores_what_was_heard_and_no_audio(service, synthesizer):
    """Hands-free with barge-in: the browser spoke the first sentence when the person cut in."""
    service.recognizer.text = "기차 언제 떠나요?"
    cid = service.create()
    stream = service.stream_audio(cid, encode_wav(np.zeros(16_000, np.float32)), hold_s=30, speak=False)
    while not stream.holding:  # every sentence written; the turn waits to hear how much was heard
        stream.next_event(timeout=0.05)
    stream.interrupt(1)
    result = stream.result()
    assert result.interrupted and result.audio == b"" and synthesizer.calls == []
    assert service.get(cid)[1].text.startswith("KTX는 2026년에 3시에 출발해요.")
    assert "5000" not in service.get(cid)[1].text


def test_silence_without_speech_sends_the_apology_as_text_to_speak(service, synthesizer):
    cid = service.create()
    events = list(service.stream_audio(cid, encode_wav(np.zeros(16_000, np.float32)), speak=False))
    assert [(e.text, e.spoken) for e in events if isinstance(e, Sentence)] == [(NOT_HEARD, spoken(NOT_HEARD))]
    assert synthesizer.calls == [] and service.get(cid) == []
