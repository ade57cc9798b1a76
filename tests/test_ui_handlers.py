"""The page's actions without a browser: the real service (Whisper base, offline chat,
espeak-ng, a SQLite file), real Korean recordings, and what a user would see."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from tests.conftest import make_settings
from voiceqna.compose import build_service
from voiceqna.ports import Timings
from voiceqna.ports import Message
from voiceqna.textnorm import compact
from voiceqna.page.handlers import AudioFiles, PageHandlers, audio_suffix, format_timings


@pytest.fixture
def service(tmp_path, recognizer):
    return build_service(make_settings(tmp_path / "data"), recognizer=recognizer)


@pytest.fixture
def handlers(service, tmp_path):
    return PageHandlers(service, AudioFiles(tmp_path / "page-audio"))


def is_wav(path: str) -> bool:
    with wave.open(path, "rb") as clip:
        return clip.getnframes() > 0


def bubble_texts(chat) -> list[tuple[str, str]]:
    return [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]) for m in chat]


def test_spoken_question_becomes_two_bubbles_with_a_playable_answer(handlers, service, read_speech):
    clip = read_speech[0]
    update = handlers.ask_audio("", [], str(clip.path))

    assert update.error == ""
    assert len(update.conversation_id) == 24  # a conversation was made for the first turn
    (user_role, said), (bot_role, answer) = bubble_texts(update.chat)
    assert (user_role, bot_role) == ("user", "assistant")
    assert compact(said)[:4] == compact(clip.text)[:4]  # "저 식당 …": the start is heard right
    assert answer == service.get(update.conversation_id)[1].text
    assert is_wav(update.answer_audio)
    assert update.chat[1]["content"][1]["path"] == update.answer_audio  # the bubble can replay it
    assert "| 음성 인식 (Whisper) |" in update.timings
    assert update.status.startswith("✅")


def test_typed_question_is_answered_and_kept_in_the_same_conversation(handlers, service):
    first = handlers.ask_text("", [], "한국의 수도는 어디야?")
    second = handlers.ask_text(first.conversation_id, first.chat, "고마워")

    assert second.conversation_id == first.conversation_id
    assert "서울" in bubble_texts(second.chat)[1][1]
    assert [role for role, _ in bubble_texts(second.chat)] == ["user", "assistant"] * 2
    assert [m.text for m in service.get(first.conversation_id)][::2] == ["한국의 수도는 어디야?", "고마워"]


def test_silence_is_answered_but_not_added(handlers, tmp_path):
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 32000)
    start = handlers.ask_text("", [], "안녕하세요")

    update = handlers.ask_audio(start.conversation_id, start.chat, str(silence))

    assert update.chat == start.chat
    assert "들리지 않았어요" in update.status and update.error == ""
    assert is_wav(update.answer_audio)  # the apology is spoken


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "녹음이 비어 있어요"),
        (b"", "녹음이 비어 있어요"),
        (b"this is not audio\n" * 40, "오디오 파일이 아니에요"),
    ],
)
def test_bad_recordings_give_a_clear_message_and_change_nothing(handlers, service, tmp_path, content, expected):
    start = handlers.ask_text("", [], "안녕하세요")
    path = None
    if content is not None:
        path = tmp_path / "upload.wav"
        path.write_bytes(content)

    update = handlers.ask_audio(start.conversation_id, start.chat, None if path is None else str(path))

    assert expected in update.error and update.error == update.status
    assert update.chat == start.chat and update.conversation_id == start.conversation_id
    assert len(service.get(start.conversation_id)) == 2


def test_too_long_recording_is_refused_with_the_limit(tmp_path, recognizer, read_speech):
    service = build_service(make_settings(tmp_path / "data", max_audio_s="1"), recognizer=recognizer)
    handlers = PageHandlers(service, AudioFiles(tmp_path / "page-audio"))

    update = handlers.ask_audio("", [], str(read_speech[0].path))  # 2.7 s

    assert "너무 길거나" in update.error and "1 s" in update.error
    assert update.chat == []


def test_empty_typed_question_keeps_the_conversation(handlers):
    update = handlers.ask_text("", [], "   ")
    assert "입력을 확인해 주세요" in update.error
    assert update.conversation_id == ""  # nothing was created for nothing


class FailingChatFake:
    """A chat engine whose server is down (the fake stands in for a remote server)."""

    description = "a chat server that is down"

    def stream(self, history, question):
        raise ConnectionError("connection refused")


def test_engine_error_is_shown_not_raised_and_loses_nothing(handlers, service):
    start = handlers.ask_text("", [], "안녕하세요")
    service.chat = FailingChatFake()

    update = handlers.ask_text(start.conversation_id, start.chat, "한국의 수도는 어디야?")

    assert "엔진 오류" in update.error and "ConnectionError" in update.error
    assert "Traceback" not in update.error
    assert update.chat == start.chat and update.timings is None  # the last turn's timings stay shown
    assert len(service.get(start.conversation_id)) == 2


def test_open_conversation_made_elsewhere_shows_its_history_with_players(handlers, service, korean_wav):
    wav = Path(korean_wav("안녕하세요")).read_bytes()
    made = service.create([Message("user", "안녕"), Message("assistant", "반가워요", wav), Message("assistant", "소리 없음")])

    update = handlers.open_conversation(f"  {made.upper()} ", [], "")

    assert update.conversation_id == made
    assert bubble_texts(update.chat) == [("user", "안녕"), ("assistant", "반가워요"), ("assistant", "소리 없음")]
    assert is_wav(update.chat[1]["content"][1]["path"])
    assert len(update.chat[2]["content"]) == 1  # no player where there is no audio


def test_opening_an_unknown_id_keeps_the_current_conversation(handlers):
    start = handlers.ask_text("", [], "안녕하세요")
    for bad in ("0123456789abcdef01234567", "not-an-id", ""):
        update = handlers.open_conversation(bad, start.chat, start.conversation_id)
        assert "대화를 찾을 수 없어요" in update.error
        assert (update.conversation_id, update.chat) == (start.conversation_id, start.chat)


def test_new_conversation_has_a_fresh_id(handlers, service):
    first, second = handlers.new_conversation(), handlers.new_conversation()
    assert first.conversation_id != second.conversation_id
    assert service.get(second.conversation_id) == [] and second.chat == []


def test_engine_info_names_the_model_device_and_engines(handlers, recognizer):
    info = handlers.engine_info()
    # The device and compute type this machine really runs (cpu, int8 here; cuda, float16 on a GPU).
    assert f"Whisper base ({recognizer.device}, {recognizer.compute_type})" in info
    assert "offline knowledge base" in info and "espeak-ng (ko)" in info and "SQLite" in info


def test_timings_table_lists_each_stage_and_marks_skipped_ones():
    timings = Timings(decode_ms=12.4, asr_ms=1530.0, chat_ms=0.0, tts_ms=40.2, store_ms=1.0, total_ms=1600.0)
    table = format_timings(timings)
    rows = dict(line.strip("| ").split(" | ") for line in table.splitlines()[2:])
    assert rows["음성 인식 (Whisper)"] == "1.53 s"
    assert rows["오디오 변환 (decode)"] == "12 ms"
    assert rows["답변 생성 (chat)"] == "—"


def test_audio_files_are_written_once_and_only_for_audio(tmp_path, korean_wav):
    files = AudioFiles(tmp_path / "audio")
    wav = Path(korean_wav("네")).read_bytes()
    first, second = files.save(wav), files.save(wav)
    assert first == second and Path(first).read_bytes() == wav and first.endswith(".wav")
    assert files.save(b"SGVsbG8=") is None  # the seed's sample "audio" is not audio
    assert audio_suffix(b"OggS" + b"\0" * 20) == ".ogg"


def test_audio_files_unused_for_an_hour_are_removed(tmp_path, korean_wav):
    import os

    files = AudioFiles(tmp_path / "audio", keep_s=3600)
    old = Path(files.save(Path(korean_wav("하나")).read_bytes()))
    os.utime(old, (old.stat().st_atime - 7200, old.stat().st_mtime - 7200))
    files.save(Path(korean_wav("둘")).read_bytes())
    assert not old.exists()


def test_answer_audio_goes_to_a_private_folder_of_this_process(korean_wav):
    """Not a fixed /tmp name where another local user could plant files under the names the
    page will serve: a fresh folder only this user can enter, one per AudioFiles."""
    import stat
    import tempfile

    planted = Path(tempfile.gettempdir()) / "voiceqna-page-audio"
    wav = Path(korean_wav("네")).read_bytes()
    one, two = AudioFiles(), AudioFiles()
    path = Path(one.save(wav))
    assert path.parent == one.folder != planted and one.folder != two.folder
    assert stat.S_IMODE(one.folder.stat().st_mode) == 0o700
    assert path.read_bytes() == wav
