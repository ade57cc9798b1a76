"""ChatService with real engines (the offline knowledge base, espeak-ng, SQLite) and, for its logic,
a fake recognizer (tests/fakes.py); one spoken turn through the real Whisper base model."""

import subprocess
import threading

import numpy as np
import pytest

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from tests.fakes import FAKE_HEARD
from voiceqna.audio import encode_wav
from voiceqna.evaluation.clips import seconds
from voiceqna.compose import build_service
from voiceqna.errors import AudioTooLarge, BadAudio, EmptyAudio, EngineUnavailable, InvalidInput, NotFound
from voiceqna.service import NOT_HEARD
from voiceqna.textnorm import compact


@pytest.fixture
def service(settings, fake_recognizer):
    return build_service(settings, recognizer=fake_recognizer)


def test_a_spoken_korean_question_is_transcribed_answered_spoken_and_kept(settings, recognizer, read_speech):
    service = build_service(settings, recognizer=recognizer)
    clip = read_speech[0]
    cid = service.create()
    turn = service.send_audio(cid, clip.path.read_bytes())
    assert compact(turn.transcript)[:4] == compact(clip.text)[:4]
    assert turn.text and turn.stored and not turn.audio_error
    assert seconds(turn.audio) > 1.0
    assert turn.timings.asr_ms > 0 and turn.timings.tts_ms > 0
    assert turn.timings.total_ms >= turn.timings.asr_ms + turn.timings.chat_ms
    messages = service.get(cid)
    assert [(m.role, m.text) for m in messages] == [("user", turn.transcript), ("assistant", turn.text)]
    assert seconds(messages[0].audio) == pytest.approx(seconds(clip.path.read_bytes()), abs=0.05)
    assert messages[1].audio == turn.audio


def test_a_webm_recording_from_a_browser_reaches_the_recognizer_whole(service, read_speech, tmp_path):
    webm = tmp_path / "mic.webm"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(read_speech[1].path), "-ac", "2", "-ar", "48000",
                    "-c:a", "libopus", str(webm)], check=True)
    turn = service.send_audio(service.create(), webm.read_bytes())
    assert turn.transcript == FAKE_HEARD and "서울" in turn.text
    assert service.recognizer.seconds == [pytest.approx(seconds(read_speech[1].path.read_bytes()), abs=0.1)]


def test_text_question_gets_the_knowledge_base_answer(service):
    cid = service.create()
    turn = service.send_text(cid, "한국의 수도는 어디야?")
    assert "서울" in turn.text
    assert turn.transcript == "한국의 수도는 어디야?"
    assert [m.role for m in service.get(cid)] == ["user", "assistant"]


def test_silence_is_answered_with_not_heard_and_not_stored(service):
    cid = service.create()
    turn = service.send_audio(cid, encode_wav(np.zeros(32_000, np.float32)))
    assert (turn.transcript, turn.text, turn.stored) == ("", NOT_HEARD, False)
    assert seconds(turn.audio) > 0.5
    assert service.get(cid) == []


@pytest.mark.parametrize(
    "data, error",
    [(b"", EmptyAudio), (b"this is not audio at all" * 10, BadAudio), (encode_wav(np.zeros(0, np.float32)), EmptyAudio)],
)
def test_bad_audio_raises_and_stores_nothing(service, data, error):
    cid = service.create()
    with pytest.raises(error):
        service.send_audio(cid, data)
    assert service.get(cid) == []


def test_limits(tmp_path, fake_recognizer):
    service = build_service(make_settings(tmp_path, max_upload_mb="0.01", max_audio_s="1"), recognizer=fake_recognizer)
    cid = service.create()
    with pytest.raises(AudioTooLarge, match="MB"):
        service.send_audio(cid, b"\0" * 20_000)
    short = build_service(make_settings(tmp_path, max_audio_s="1"), recognizer=fake_recognizer)
    with pytest.raises(AudioTooLarge, match="1 s"):
        short.send_audio(cid, encode_wav(np.zeros(24_000, np.float32)))
    with pytest.raises(InvalidInput, match="limit"):
        build_service(make_settings(tmp_path, max_message_chars="5"), recognizer=fake_recognizer).send_text(cid, "가" * 6)
    assert service.get(cid) == []


@pytest.mark.parametrize("text", ["", "   ", "안녕\x00하세요"])
def test_empty_or_nul_text_is_refused(service, text):
    cid = service.create()
    with pytest.raises(InvalidInput):
        service.send_text(cid, text)
    assert service.get(cid) == []


def test_unknown_ids_and_roles(service):
    with pytest.raises(NotFound):
        service.send_text("0123456789abcdef01234567", "안녕")
    with pytest.raises(NotFound):
        service.send_audio("../etc/passwd", b"RIFF")
    with pytest.raises(InvalidInput, match="role"):
        service.send_text(service.create(), "안녕", role="robot")


def test_a_failing_chat_engine_leaves_no_partial_turn(tmp_path, fake_recognizer):
    fake = FakeOpenAI(fail_with=503)
    try:
        settings = make_settings(tmp_path, openai_api_key="sk-x", openai_base_url=fake.base_url)
        service = build_service(settings, recognizer=fake_recognizer)
        cid = service.create()
        with pytest.raises(EngineUnavailable):
            service.send_text(cid, "안녕하세요")
        assert service.get(cid) == []
        fake.fail_with = 0
        assert service.send_text(cid, "안녕하세요").text == "서울이에요."
        assert len(service.get(cid)) == 2
    finally:
        fake.close()


def test_the_openai_engine_sees_the_conversation_history(tmp_path, fake_recognizer):
    fake = FakeOpenAI()
    try:
        service = build_service(make_settings(tmp_path, openai_api_key="sk-x", openai_base_url=fake.base_url),
                                recognizer=fake_recognizer)
        cid = service.create()
        service.send_text(cid, "첫 번째 질문")
        service.send_text(cid, "두 번째 질문")
        contents = [m["content"] for m in fake.requests[-1]["messages"][1:]]
        assert contents == ["첫 번째 질문", "서울이에요.", "두 번째 질문"]
    finally:
        fake.close()


def test_a_failing_synthesizer_keeps_the_answer_as_text(service):
    class Broken:
        def synthesize(self, text):
            raise EngineUnavailable("espeak-ng failed: test")

    service.synthesizer = Broken()
    cid = service.create()
    turn = service.send_text(cid, "안녕하세요")
    assert turn.audio == b"" and "could not be spoken" in turn.audio_error
    assert [(m.role, m.audio) for m in service.get(cid)] == [("user", b""), ("assistant", b"")]


def test_conversations_survive_a_restart(settings, fake_recognizer):
    first = build_service(settings, recognizer=fake_recognizer)
    cid = first.create()
    first.send_text(cid, "고마워")
    first.store.close()
    second = build_service(settings, recognizer=fake_recognizer)
    assert [m.text for m in second.get(cid)][0] == "고마워"
    second.reset(cid)
    assert second.get(cid) == []


def test_concurrent_turns_on_one_conversation_stay_whole(service):
    cid = service.create()
    questions = [f"질문 {i}" for i in range(12)]
    threads = [threading.Thread(target=service.send_text, args=(cid, q)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    messages = service.get(cid)
    assert len(messages) == 24
    assert [m.role for m in messages] == ["user", "assistant"] * 12
    assert sorted(m.text for m in messages[::2]) == sorted(questions)
