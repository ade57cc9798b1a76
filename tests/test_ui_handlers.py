"""The page's actions without a browser: the service (offline chat, espeak-ng, a SQLite file; a
fake recognizer for the logic, the real Whisper base model for one spoken turn of each kind), real
Korean recordings, and what a user would see after a turn and after each event of it (one page
update per event)."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from voiceqna.compose import build_service
from voiceqna.ports import Timings
from voiceqna.ports import Message
from voiceqna.textnorm import compact
from voiceqna.page.audio_files import AudioFiles, audio_suffix
from voiceqna.page.handlers import PageHandlers
from voiceqna.page.views import format_timings


@pytest.fixture
def service(tmp_path, fake_recognizer):
    return build_service(make_settings(tmp_path / "data"), recognizer=fake_recognizer)


@pytest.fixture
def handlers(service, tmp_path):
    return PageHandlers(service, AudioFiles(tmp_path / "page-audio"))


@pytest.fixture
def real_service(tmp_path, recognizer):
    """The service with the real Whisper base model (model tier)."""
    return build_service(make_settings(tmp_path / "real-data"), recognizer=recognizer)


@pytest.fixture
def real_handlers(real_service, tmp_path):
    return PageHandlers(real_service, AudioFiles(tmp_path / "real-page-audio"))


def after_turn(updates):
    """The page as a streamed turn leaves it: its last update."""
    return list(updates)[-1]


def is_wav(path: str) -> bool:
    with wave.open(path, "rb") as clip:
        return clip.getnframes() > 0


def bubble_texts(chat) -> list[tuple[str, str]]:
    return [(m["role"], m["content"] if isinstance(m["content"], str) else m["content"][0]) for m in chat]


def test_spoken_question_becomes_two_bubbles_with_a_playable_answer(real_handlers, real_service, read_speech):
    handlers, service = real_handlers, real_service
    clip = read_speech[0]
    update = after_turn(handlers.stream_audio("", [], str(clip.path)))

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
    first = after_turn(handlers.stream_text("", [], "한국의 수도는 어디야?"))
    second = after_turn(handlers.stream_text(first.conversation_id, first.chat, "고마워"))

    assert second.conversation_id == first.conversation_id
    assert "서울" in bubble_texts(second.chat)[1][1]
    assert [role for role, _ in bubble_texts(second.chat)] == ["user", "assistant"] * 2
    assert [m.text for m in service.get(first.conversation_id)][::2] == ["한국의 수도는 어디야?", "고마워"]


def test_silence_is_answered_but_not_added(handlers, tmp_path):
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 32000)
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))

    update = after_turn(handlers.stream_audio(start.conversation_id, start.chat, str(silence)))

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
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))
    path = None
    if content is not None:
        path = tmp_path / "upload.wav"
        path.write_bytes(content)

    update = after_turn(handlers.stream_audio(start.conversation_id, start.chat, None if path is None else str(path)))

    assert expected in update.error and update.error == update.status
    assert update.chat == start.chat and update.conversation_id == start.conversation_id
    assert len(service.get(start.conversation_id)) == 2


def test_too_long_recording_is_refused_with_the_limit(tmp_path, fake_recognizer, read_speech):
    service = build_service(make_settings(tmp_path / "data", max_audio_s="1"), recognizer=fake_recognizer)
    handlers = PageHandlers(service, AudioFiles(tmp_path / "page-audio"))

    update = after_turn(handlers.stream_audio("", [], str(read_speech[0].path)))  # 2.7 s

    assert "너무 길거나" in update.error and "1 s" in update.error
    assert update.chat == []


def test_empty_typed_question_keeps_the_conversation(handlers):
    update = after_turn(handlers.stream_text("", [], "   "))
    assert "입력을 확인해 주세요" in update.error
    assert update.conversation_id == ""  # nothing was created for nothing


class FailingChatFake:
    """A chat engine whose server is down (the fake stands in for a remote server)."""

    description = "a chat server that is down"

    def stream(self, history, question):
        raise ConnectionError("connection refused")


def test_engine_error_is_shown_not_raised_and_loses_nothing(handlers, service):
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))
    service.chat = FailingChatFake()

    update = after_turn(handlers.stream_text(start.conversation_id, start.chat, "한국의 수도는 어디야?"))

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
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))
    for bad in ("0123456789abcdef01234567", "not-an-id", ""):
        update = handlers.open_conversation(bad, start.chat, start.conversation_id)
        assert "대화를 찾을 수 없어요" in update.error
        assert (update.conversation_id, update.chat) == (start.conversation_id, start.chat)


def test_new_conversation_has_a_fresh_id(handlers, service):
    first, second = handlers.new_conversation(), handlers.new_conversation()
    assert first.conversation_id != second.conversation_id
    assert service.get(second.conversation_id) == [] and second.chat == []


def test_engine_info_names_the_model_device_and_engines(real_handlers, recognizer):
    info = real_handlers.engine_info()
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


# --- streamed turns: what the page shows after each event ---

THREE_SENTENCES = ("서울은 대한민국의 수도이면서 인구가 가장 많은 큰 도시예요. 한강이 도시 한가운데를 흐르고 북한산과 남산이 "
                   "둘러싸고 있어요. 봄에는 벚꽃이 피고 가을에는 단풍이 아름다워서 여행하기 좋아요.")


@pytest.fixture
def streaming_handlers(tmp_path, fake_recognizer):
    """The real service whose chat engine is the OpenAI one, talking to a FAKE OpenAI-compatible
    server (OpenAI cannot be reached here) that streams a three-sentence answer token by token."""
    fake = FakeOpenAI(answer=THREE_SENTENCES, tokens_per_s=200)
    service = build_service(make_settings(tmp_path / "data", openai_api_key="sk-x", openai_base_url=fake.base_url),
                            recognizer=fake_recognizer)
    yield PageHandlers(service, AudioFiles(tmp_path / "page-audio")), service
    fake.close()


def test_streamed_answer_shows_each_sentence_and_queues_its_audio_fake_openai_server(streaming_handlers):
    handlers, service = streaming_handlers

    updates = list(handlers.stream_text("", [], "서울에 대해 알려 줘"))

    *during, last = updates
    assert all(u.error == "" and u.status.startswith("💬") for u in during)
    assert during[0].chat == [{"role": "user", "content": "서울에 대해 알려 줘"}]  # the question at once
    written = [u.chat[1]["content"] for u in during if len(u.chat) == 2]
    assert written[0].startswith("서울은") and "봄에는" not in written[0]  # the first sentence before the rest
    assert written[-1] == THREE_SENTENCES
    clips = last.playback.clips
    assert len(clips) == 3 and all(is_wav(c) for c in clips)
    assert [len(u.playback.clips) for u in updates] == sorted(len(u.playback.clips) for u in updates)  # only grows
    assert {u.playback.turn for u in updates} == {last.playback.turn}  # one turn id from start to end
    assert last.playback.final and not last.playback.stopped and last.status.startswith("✅")
    stored = service.get(last.conversation_id)
    assert [m.text for m in stored] == ["서울에 대해 알려 줘", THREE_SENTENCES]
    assert bubble_texts(last.chat) == [("user", "서울에 대해 알려 줘"), ("assistant", THREE_SENTENCES)]
    assert Path(last.chat[1]["content"][1]["path"]).read_bytes() == stored[1].audio  # the bubble replays it whole
    rows = dict(line.strip("| ").split(" | ") for line in last.timings.splitlines()[2:])
    assert rows["첫 토큰까지 (to first token)"] != "—" and rows["첫 음성까지 (to first audio)"] != "—"


def test_streamed_spoken_question_shows_the_transcript_first(real_handlers, real_service, read_speech):
    handlers, service = real_handlers, real_service
    clip = next(c for c in read_speech if c.path.name == "sub100100a00000.wav")

    first, *_, last = handlers.stream_audio("", [], str(clip.path))

    (role, said), = bubble_texts(first.chat)
    assert role == "user" and compact(said)[:4] == compact(clip.text)[:4]
    assert first.playback.clips == () and not first.playback.final
    assert last.status.startswith("✅") and bubble_texts(last.chat)[0] == ("user", said)
    assert [m.text for m in service.get(last.conversation_id)] == [said, bubble_texts(last.chat)[1][1]]


def test_streamed_silence_plays_the_apology_and_adds_nothing(handlers, tmp_path):
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 32000)
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))

    updates = list(handlers.stream_audio(start.conversation_id, start.chat, str(silence)))

    assert all(u.chat == start.chat for u in updates)
    assert "들리지 않았어요" in updates[-1].status and updates[-1].error == ""
    assert len(updates[-1].playback.clips) == 1 and is_wav(updates[-1].playback.clips[0])


def test_streamed_turn_that_fails_stops_the_audio_and_keeps_the_conversation(handlers, service):
    start = after_turn(handlers.stream_text("", [], "안녕하세요"))
    service.chat = FailingChatFake()

    *_, last = handlers.stream_text(start.conversation_id, start.chat, "한국의 수도는 어디야?")

    assert "엔진 오류" in last.error and last.chat == start.chat
    assert last.playback.stopped and last.playback.final
    assert len(service.get(start.conversation_id)) == 2


@pytest.mark.parametrize("ask", [
    lambda h, cid: h.stream_text(cid, [], "   "),
    lambda h, cid: h.stream_text("0123456789abcdef01234567", [], "안녕"),
    lambda h, cid: h.stream_audio(cid, [], None),
])
def test_streamed_turn_refused_before_it_starts_says_why_once(handlers, service, ask):
    cid = service.create()
    (update,) = list(ask(handlers, cid))
    assert update.error and update.playback is None
    assert service.get(cid) == []


def test_page_closed_mid_answer_the_turn_is_still_stored_whole(handlers, service):
    cid = service.create()
    updates = handlers.stream_text(cid, [], "안녕하세요")
    next(updates)  # the question is shown, then the page goes away
    updates.close()

    deadline = time.monotonic() + 60
    while len(service.get(cid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m.role for m in service.get(cid)] == ["user", "assistant"]
    assert service.get(cid)[1].text.startswith("안녕하세요!")
