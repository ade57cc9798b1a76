"""Hands-free sessions on the server (voiceqna/page/handsfree.py) driven the way the page's
script drives them: real Korean recordings joined by pauses of their own room noise, sent as
16 kHz 16-bit PCM in 100 ms pieces through the page's JSON calls, the real Silero VAD, a fake
recognizer (tests/fakes.py; the real Whisper model for the two-question conversation), the offline
chat engine, espeak-ng and a real SQLite file. Times are seconds of audio, never wall-clock times."""

from __future__ import annotations

import base64
import time

import numpy as np
import pytest

from tests.conftest import make_settings
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.compose import build_service
from voiceqna.config import HandsFreeOptions
from voiceqna.evaluation import streams
from voiceqna.evaluation.clips import seconds
from voiceqna.evaluation.metrics import char_errors
from voiceqna.page import handsfree_calls
from voiceqna.page.handlers import PageHandlers
from voiceqna.page.handsfree import HandsFreeSessions
from voiceqna.page.handsfree_calls import pcm16_samples
from voiceqna.service import INTERRUPTED_MARK

QUESTIONS = ["sub100100a00000.wav", "sub100102a00011.wav"]
"""저 식당 음식이 정말 맛있나 봐요. / 공부와 일을 같이 하려면 힘들겠어요. (no long pause inside)"""
PIECE = SAMPLE_RATE // 10
STORED_WAIT_S = 120.0
TAIL_S = 2.0
"""Room noise after a question: longer than HANDSFREE_UNFINISHED_WAIT_S, so the turn ends whatever
its words say and however late they are known (these tests send audio faster than it is spoken)."""


@pytest.fixture(scope="module")
def questions(read_speech) -> list[tuple[streams.Recording, str]]:
    by_name = {c.path.name: c for c in read_speech}
    return [(streams.Recording.of(decode(by_name[n].path.read_bytes())), by_name[n].text) for n in QUESTIONS]


@pytest.fixture
def service(tmp_path, fake_recognizer):
    service = build_service(make_settings(tmp_path / "data"), recognizer=fake_recognizer)
    yield service
    service.close()


@pytest.fixture
def real_service(tmp_path, recognizer):
    """With the real Whisper base model (model tier)."""
    service = build_service(make_settings(tmp_path / "real-data"), recognizer=recognizer)
    yield service
    service.close()


@pytest.fixture
def handlers(service):
    page = PageHandlers(service, hands_free=HandsFreeOptions())
    yield page
    page.hands_free.close_all()


def seconds_of(samples: np.ndarray) -> float:
    return samples.size / SAMPLE_RATE


def pcm_base64(samples: np.ndarray) -> str:
    return base64.b64encode((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()).decode()


def feed(handlers: PageHandlers, token: str, samples: np.ndarray, playing: bool = False,
         barge_in: bool = False) -> list[dict]:
    """Send `samples` as the page does, 100 ms a request; every reply."""
    return [handsfree_calls.feed(handlers, {"token": token, "audio": pcm_base64(samples[i: i + PIECE]),
                                      "playing": playing, "barge_in": barge_in})
            for i in range(0, samples.size, PIECE)]


def turn_ids(replies: list[dict]) -> list[str]:
    assert all(r["error"] == "" for r in replies), [r["error"] for r in replies if r["error"]]
    return [t for r in replies for t in r["turns"]]


def show(handlers: PageHandlers, token: str, turn: str, conversation_id: str, chat: list) -> list:
    """Follow a turn as the page does; the page's player says the answer was heard once it has
    every sentence (the turn is held until then). The updates."""
    updates = []
    for update in handlers.follow_hands_free(token, turn, chat, conversation_id):
        updates.append(update)
        if update.playback is not None and update.playback.final:
            handlers.heard(turn)
    return updates


def stored(service, conversation_id: str, count: int) -> list:
    """The conversation once it holds `count` messages (a turn left to finish on its own)."""
    deadline = time.monotonic() + STORED_WAIT_S
    while len(messages := service.get(conversation_id)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return messages


def test_two_questions_are_two_turns_stored_in_order(real_service, questions):
    service, handlers = real_service, PageHandlers(real_service, hands_free=HandsFreeOptions())
    stream = streams.join([q for q, _ in questions], [2.0], lead_s=1.0, tail_s=2.0)
    update, token = handlers.open_hands_free("", [])
    assert token and not update.error and "핸즈프리" in update.status

    replies = feed(handlers, token, stream.audio)
    first, second = turn_ids(replies)
    assert any(r["speech_started"] for r in replies)

    chat, cid = update.chat, update.conversation_id
    for turn in (first, second):
        updates = show(handlers, token, turn, cid, chat)
        assert not updates[-1].error and "✅" in updates[-1].status
        chat = updates[-1].chat
    messages = service.get(cid)
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    for message, (_, text) in zip(messages[0::2], questions):
        assert char_errors(text, message.text).rate <= 0.3, (text, message.text)
    assert all(m.text and m.audio for m in messages[1::2])
    assert [c["content"] for c in chat if c["role"] == "user"] == [m.text for m in messages[0::2]]
    handlers.hands_free.close_all()


def test_half_duplex_ignores_what_is_heard_while_the_answer_plays(handlers, service, questions):
    (one, _), (two, _) = questions
    update, token = handlers.open_hands_free("", [])
    [turn] = turn_ids(feed(handlers, token, streams.join([one], [], tail_s=TAIL_S).audio))

    while_playing = feed(handlers, token, streams.join([two], [], tail_s=TAIL_S).audio, playing=True)
    assert turn_ids(while_playing) == []
    assert not any(r["speech_started"] or r["barge_in"] for r in while_playing)
    assert {r["state"] for r in while_playing} == {"playback"}
    after = feed(handlers, token, one.room_tone(2.0), playing=False)
    assert turn_ids(after) == [] and after[-1]["state"] == "listening"

    show(handlers, token, turn, update.conversation_id, [])
    assert len(service.get(update.conversation_id)) == 2


def test_barge_in_stores_only_what_was_played_and_hears_the_new_question(handlers, service, questions):
    (one, text_one), (two, _) = questions
    service.recognizer.text = text_one  # the knowledge base answers it in several sentences
    update, token = handlers.open_hands_free("", [])
    cid = update.conversation_id
    [first] = turn_ids(feed(handlers, token, streams.join([one], [], tail_s=TAIL_S).audio))
    updates = handlers.follow_hands_free(token, first, [], cid)
    while (shown := next(updates)).playback is None or not shown.playback.final:
        pass  # every sentence is spoken; the page plays the first one when the person talks over it
    said = [c["content"] for c in shown.chat if c["role"] == "assistant"][-1]
    assert len(shown.playback.clips) >= 2, said  # the offline answer has two sentences

    barge, second = [], []
    playing = True
    for i in range(0, (speech := streams.join([two], [], lead_s=0.5, tail_s=2.0).audio).size, PIECE):
        [reply] = feed(handlers, token, speech[i: i + PIECE], playing=playing, barge_in=True)
        if reply["barge_in"]:
            barge.append(i / SAMPLE_RATE)
            assert handsfree_calls.interrupt(handlers, {"token": token, "turn": first, "played": 1})["interrupted"]
            playing = False  # the page stopped the answer at once
        second += turn_ids([reply])
    assert len(barge) == 1 and 0.5 <= barge[0] <= 2.0, barge
    finished = list(updates)
    assert "✅" in finished[-1].status

    assert len(second) == 1
    show(handlers, token, second[0], cid, finished[-1].chat)
    messages = service.get(cid)
    assert [m.role for m in messages] == ["user", "assistant"] * 2
    answer = messages[1].text
    assert answer.endswith(INTERRUPTED_MARK)
    first_sentence = answer[: -len(INTERRUPTED_MARK)].strip()
    assert first_sentence and said.startswith(first_sentence) and len(first_sentence) < len(said)
    assert messages[2].text == text_one and seconds(messages[2].audio) >= seconds_of(two.speech)


def test_closing_a_session_frees_it_and_still_stores_its_turn(handlers, service, questions):
    update, token = handlers.open_hands_free("", [])
    [turn] = turn_ids(feed(handlers, token, streams.join([questions[0][0]], [], tail_s=TAIL_S).audio))

    assert handsfree_calls.close(handlers, {"token": token}) == {"closed": True}

    assert token not in handlers.hands_free and len(handlers.hands_free) == 0
    assert feed(handlers, token, np.zeros(PIECE, np.float32))[0]["error"] == "gone"
    messages = stored(service, update.conversation_id, 2)
    assert [m.role for m in messages] == ["user", "assistant"]


def test_an_idle_session_is_ended_and_its_turn_still_stored(service, questions):
    sessions = HandsFreeSessions(service, HandsFreeOptions(), idle_s=1.0)
    cid = service.create()
    token = sessions.open(cid)
    audio = streams.join([questions[1][0]], [], tail_s=TAIL_S).audio
    replies = [sessions.feed(token, audio[i: i + PIECE], False, False) for i in range(0, audio.size, PIECE)]
    assert len([t for r in replies for t in r.turns]) == 1

    deadline = time.monotonic() + 30
    while token in sessions and time.monotonic() < deadline:
        time.sleep(0.1)  # the janitor ends it: no audio for idle_s

    assert token not in sessions
    assert [m.role for m in stored(service, cid, 2)] == ["user", "assistant"]
    sessions.close_all()


def test_bad_audio_gets_a_clear_error_and_the_session_goes_on(handlers, service, questions):
    update, token = handlers.open_hands_free("", [])
    odd = handsfree_calls.feed(handlers, {"token": token, "audio": base64.b64encode(b"\x00\x01\x02").decode()})
    huge = handsfree_calls.feed(handlers, {"token": token, "audio": pcm_base64(np.zeros(11 * SAMPLE_RATE, np.float32))})
    not_base64 = handsfree_calls.feed(handlers, {"token": token, "audio": "not base64!"})
    no_audio = handsfree_calls.feed(handlers, {"token": token})
    unknown = handsfree_calls.feed(handlers, {"token": "no-such-token", "audio": pcm_base64(np.zeros(PIECE, np.float32))})

    assert "16-bit" in odd["error"] and "even number of bytes" in odd["error"]
    assert "Too much audio" in huge["error"] and "at most 10 s" in huge["error"]
    assert "base64" in not_base64["error"]
    assert "'audio'" in no_audio["error"]
    assert unknown["error"] == "gone"  # the page opens a new session
    assert not any(r["turns"] for r in (odd, huge, not_base64, no_audio, unknown))
    with pytest.raises(Exception, match="16-bit"):
        pcm16_samples(b"\x00")

    # Nothing was lost: the same session still hears a question, and nothing else was stored.
    assert len(turn_ids(feed(handlers, token, streams.join([questions[0][0]], [], tail_s=TAIL_S).audio))) == 1
    assert service.get(update.conversation_id) == []
    assert handsfree_calls.interrupt(handlers, {"token": token, "turn": "x", "played": "1"})["error"]
    assert handsfree_calls.close(handlers, {"token": 5}) == {"closed": False}
    assert handsfree_calls.close(handlers, {"token": token}) == {"closed": True}
    assert [m.role for m in stored(service, update.conversation_id, 2)] == ["user", "assistant"]


def test_a_turn_started_early_in_a_pause_is_thrown_away_when_the_speech_goes_on(service, questions):
    """HANDSFREE_SPECULATE_S: recognition starts once a pause is 0.3 s long. A 0.5 s pause
    between two sentences starts a turn early, which is thrown away (nothing stored) when the
    speech goes on; the pause after the last sentence ends the turn, and the turn started early
    in it is the one stored, with both sentences."""
    (one, _), (two, _) = questions
    sessions = HandsFreeSessions(service, HandsFreeOptions(speculate_s=0.3, read_words=False), hold_s=0.0)
    cid = service.create()
    token = sessions.open(cid)
    audio = streams.join([one, two], [0.5], lead_s=1.0, tail_s=1.5).audio
    replies = [sessions.feed(token, audio[i: i + PIECE], False, False) for i in range(0, audio.size, PIECE)]

    [turn] = [t for r in replies for t in r.turns]
    assert sessions.speculated == 2 and sessions.adopted == 1
    shown = sessions.claim(token, turn)
    result = shown.stream.result()
    sessions.finished(token, turn)
    messages = stored(service, cid, 2)
    assert [m.role for m in messages] == ["user", "assistant"] and result.stored
    assert seconds(messages[0].audio) >= seconds_of(one.speech) + 0.5 + seconds_of(two.speech)  # both sentences
    sessions.close_all()
    assert len(service.get(cid)) == 2  # the turn thrown away stored nothing


def test_without_speculation_the_turn_starts_when_the_pause_ends_it(service, questions):
    sessions = HandsFreeSessions(service, HandsFreeOptions(speculate_s=0.0), hold_s=0.0)
    cid = service.create()
    token = sessions.open(cid)
    audio = streams.join([questions[0][0]], [], tail_s=1.5).audio
    turns = [t for i in range(0, audio.size, PIECE) for t in sessions.feed(token, audio[i: i + PIECE], False, False).turns]
    assert len(turns) == 1 and sessions.speculated == 0
    sessions.close_all()
    assert [m.role for m in stored(service, cid, 2)] == ["user", "assistant"]


def test_a_tab_that_went_away_has_its_sessions_ended(handlers, service):
    """Gradio's unload (the tab's heartbeat stopped) ends what the tab's beacon did not."""
    _, first = handlers.open_hands_free("", [], tab="tab-a")
    _, second = handlers.open_hands_free("", [], tab="tab-a")
    _, other = handlers.open_hands_free("", [], tab="tab-b")

    assert handlers.hands_free_tab_gone("tab-a") == 2
    assert first not in handlers.hands_free and second not in handlers.hands_free
    assert other in handlers.hands_free
    assert handlers.hands_free_tab_gone("") == 0 and handlers.hands_free_tab_gone("tab-a") == 0


def test_a_thinking_pause_mid_question_stays_one_turn_and_a_finished_question_ends_soon(real_service, read_speech):
    """The words recognised in a pause (real Whisper) decide it: a question with a 0.8 s thinking
    pause after 가는데 stays one turn, stored whole; after its final 좋아요? the turn ends after the
    short wait. Recognition is let keep up with the audio (each turn started early is waited
    for before more audio is sent), as it does when the speech comes in real time."""
    from tests.test_turn_end import CUT_S, QUESTION, RESUME_S, spliced

    service = real_service
    clip = next(c for c in read_speech if c.path.name == QUESTION)
    audio, cut_at, end_at = spliced(decode(clip.path.read_bytes()), CUT_S, RESUME_S, 0.8)
    started = []
    stream_audio = service.stream_audio
    service.stream_audio = lambda *args, **kwargs: started.append(stream_audio(*args, **kwargs)) or started[-1]
    options = HandsFreeOptions()
    sessions = HandsFreeSessions(service, options, hold_s=0.0)
    cid = service.create()
    token = sessions.open(cid)
    reported = []
    for begin in range(0, audio.size, PIECE):
        reply = sessions.feed(token, audio[begin: begin + PIECE], False, False)
        reported += [((begin + PIECE) / SAMPLE_RATE, turn) for turn in reply.turns]
        deadline = time.monotonic() + 60
        while started and started[-1].transcript is None and time.monotonic() < deadline:
            time.sleep(0.02)

    [(at, turn)] = reported
    assert end_at < at <= end_at + options.finished_wait_s + 0.25
    shown = sessions.claim(token, turn)
    result = shown.stream.result()
    sessions.finished(token, turn)
    assert result.stored and char_errors(clip.text, result.transcript).rate <= 0.3, result.transcript
    sessions.close_all()
