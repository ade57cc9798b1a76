"""The end of a hands-free turn read from the words (voiceqna/turn_end.py): the rule's table, and
hands-free sessions ending turns by it, on real recordings spliced with room noise, the real
Silero VAD and a stand-in for the service whose "recognised" words the test gives (fake: no
recognizer, so these tests stay fast; tests/test_handsfree.py has the real Whisper one)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import HandsFreeOptions
from voiceqna.evaluation import streams
from voiceqna.page.handsfree import HandsFreeSessions
from voiceqna.turn_end import FINISHED, UNFINISHED, UNSURE, decide, read_words

OPTIONS = HandsFreeOptions()
PIECE = SAMPLE_RATE // 10


@pytest.mark.parametrize("text, kind", [
    # finished: final endings, a question or exclamation mark
    ("저 식당 음식이 정말 맛있나 봐요.", FINISHED),
    ("알겠습니다. 조심해서 일하겠습니다.", FINISHED),
    ("내일 회의는 몇 시에 시작합니까", FINISHED),
    ("여기에 있는 이 상자를 모두 옮길까요", FINISHED),
    ("이번 주 수요일에 시간 있어요?", FINISHED),
    ("그건 제가 할게.", FINISHED),
    ("벌써 다 먹었죠", FINISHED),
    ("정말 재미있네", FINISHED),
    ("완전 짜증!", FINISHED),
    ("면접에서 뭔가 이상하게 하는 거 아냐?", FINISHED),
    ("네", FINISHED),
    # unfinished: connectives, particles, a bare noun, fillers, trailing off
    ("제가 한국 친구 집에 처음 가는데", UNFINISHED),
    ("비가 오니까", UNFINISHED),
    ("밥을 먹고", UNFINISHED),
    ("시간이 있으면", UNFINISHED),
    ("학교에 가서", UNFINISHED),
    ("좋기는 하지만", UNFINISHED),
    ("작가가 무슨 생각인지.", UNFINISHED),
    ("그 많은 돈을", UNFINISHED),
    ("우리 회사 근처에", UNFINISHED),
    ("저 식당은", UNFINISHED),
    ("제 학생증", UNFINISHED),
    ("그러니까 음", UNFINISHED),
    ("어", UNFINISHED),
    ("이 영화는 사상 최악..", UNFINISHED),
    ("정말 뛰쳐 나갈 뻔 했는데…", UNFINISHED),
    ("이상하게 하기는,", UNFINISHED),
    # unsure: casual endings that nouns share, no Korean, nothing
    ("진짜 좋아", UNSURE),
    ("이건 영어", UNSURE),
    ("어서 오십시오.", UNSURE),
    ("OK.", UNSURE),
    ("", UNSURE),
])
def test_the_words_say_whether_the_sentence_is_finished(text, kind):
    assert read_words(text)[0] == kind


def test_each_verdict_waits_its_setting_and_short_speech_the_normal_wait():
    options = HandsFreeOptions(finished_wait_s=0.25, silence_s=0.6, unfinished_wait_s=1.4, short_speech_s=1.5)
    assert decide("맛있나 봐요.", 2.0, options).wait_s == 0.25
    assert decide("처음 가는데", 2.0, options).wait_s == 1.4
    assert decide("진짜 좋아", 2.0, options).wait_s == 0.6
    short = decide("고맙습니다.", 1.0, options)  # Whisper's stock phrase for a fragment
    assert (short.kind, short.wait_s) == (UNSURE, 0.6)


def test_bad_waits_are_refused_naming_the_variables():
    problems = HandsFreeOptions(finished_wait_s=0.9).problems()
    assert problems and "HANDSFREE_FINISHED_WAIT_S=0.9" in problems[0]
    assert HandsFreeOptions(unfinished_wait_s=0.5).problems()
    assert HandsFreeOptions(speculate_s=0.01).problems()


# --- hands-free sessions ending turns by the words -------------------------------------------


class FakeStream:
    """A started turn, as hands-free sees it: only its `transcript` (None until "recognised")."""

    def __init__(self, transcript: str | None) -> None:
        self.transcript = transcript
        self.cancelled = False
        self.finished = False

    def cancel(self) -> None:
        self.cancelled = True

    def close(self) -> None:
        pass

    def heard(self) -> None:
        pass

    def result(self) -> None:
        return None

    def wait(self) -> None:
        pass


class FakeWords:
    """Stands in for the service (fake: no recognizer, no chat engine). Each turn started gets
    the words `words(seconds of speech in its audio)` at once, or, with `late`, only once the
    test calls `recognise()`."""

    cancellable_turns = True

    def __init__(self, words, late: bool = False) -> None:
        self.words = words
        self.late = late
        self.started: list[tuple[FakeStream, float]] = []
        self.lock = threading.Lock()

    def stream_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "", hold_s: float = 0.0):
        seconds = decode(data).size / SAMPLE_RATE
        stream = FakeStream(None if self.late else self.words(seconds))
        self.started.append((stream, seconds))
        return stream

    def recognise(self) -> None:
        for stream, seconds in self.started:
            if stream.transcript is None:
                stream.transcript = self.words(seconds)


@pytest.fixture(scope="module")
def by_name(read_speech) -> dict:
    return {c.path.name: decode(c.path.read_bytes()) for c in read_speech}


def spliced(audio: np.ndarray, cut_s: float, resume_s: float, pause_s: float) -> tuple[np.ndarray, float, float]:
    """A recording with `pause_s` of its own room noise put where its speech pauses at `cut_s`
    (resuming at `resume_s`), 1 s of room noise before and 2 s after. The stream, and where the
    thinking pause starts and the speech ends in it."""
    recording = streams.Recording.of(audio)
    whole = streams.speech_spans(audio)
    begin, end = whole[0][0] - int(streams.LEAD_IN_S * SAMPLE_RATE), whole[-1][1]
    cut, resume = int(cut_s * SAMPLE_RATE), int(resume_s * SAMPLE_RATE) - SAMPLE_RATE // 20
    parts = [recording.room_tone(1.0, 1), audio[begin:cut], recording.room_tone(pause_s, 2), audio[resume:end],
             recording.room_tone(2.0, 3)]
    lead = parts[0].size
    cut_at = (lead + cut - begin) / SAMPLE_RATE
    end_at = cut_at + pause_s + (end - resume) / SAMPLE_RATE
    return np.concatenate(parts).astype(np.float32), cut_at, end_at


def whole(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """The recording trimmed to its speech with 1 s of room noise before and 2 s after; where its speech ends."""
    stream = streams.join([streams.Recording.of(audio)], [], lead_s=1.0, tail_s=2.0)
    return stream.audio, stream.speech[0][1]


def listen(sessions: HandsFreeSessions, token: str, audio: np.ndarray, before=None) -> list[tuple[float, object]]:
    """Feed the stream 100 ms a request, as the page does; each reply with the stream time it was sent at."""
    replies = []
    for begin in range(0, audio.size, PIECE):
        if before is not None:
            before(begin / SAMPLE_RATE)
        reply = sessions.feed(token, audio[begin: begin + PIECE], False, False)
        replies.append((min(begin + PIECE, audio.size) / SAMPLE_RATE, reply))
    return replies


def turns_at(replies) -> list[float]:
    assert all(r.error == "" for _, r in replies)
    return [at for at, r in replies for _ in r.turns]


QUESTION = "sub100122a00071.wav"
"""제가 한국 친구 집에 처음 가는데 어떤 선물을 가지고 가는 게 좋아요? (pauses after 가는데:
benchmarks/data/end_of_turn_ko.csv)"""
CUT_S, RESUME_S = 2.496, 2.656


def test_a_thinking_pause_after_unfinished_words_keeps_one_turn_shown_as_listening(by_name):
    audio, cut_at, end_at = spliced(by_name[QUESTION], CUT_S, RESUME_S, 0.8)
    first_part_s = cut_at - 1.0 + OPTIONS.speculate_s + 0.5

    def words(seconds: float) -> str:
        return "제가 한국친구 집에 처음 가는데" if seconds < first_part_s else "제가 한국친구 집에 처음 가는데 어떤 선물을 가지고 가는 게 좋아요?"

    service = FakeWords(words)
    sessions = HandsFreeSessions(service, OPTIONS, hold_s=0.0)
    token = sessions.open("c1")
    replies = listen(sessions, token, audio)
    [reported] = turns_at(replies)
    assert end_at < reported <= end_at + OPTIONS.finished_wait_s + 0.2
    in_pause = [r.state for at, r in replies if cut_at + OPTIONS.speculate_s + 0.2 < at < cut_at + 0.8]
    assert in_pause and set(in_pause) == {"listening"}  # 듣는 중 while it waits for the rest
    assert any(s.cancelled for s, _ in service.started)  # the turn started in the thinking pause was thrown away
    sessions.close_all()


def test_with_a_fixed_pause_the_same_question_is_cut_in_two(by_name):
    audio, cut_at, end_at = spliced(by_name[QUESTION], CUT_S, RESUME_S, 0.8)
    sessions = HandsFreeSessions(FakeWords(lambda s: "처음 가는데"), HandsFreeOptions(read_words=False), hold_s=0.0)
    token = sessions.open("c1")
    reported = turns_at(listen(sessions, token, audio))
    assert len(reported) == 2 and cut_at + 0.7 <= reported[0] < end_at
    sessions.close_all()


def test_a_finished_question_ends_after_the_short_wait(by_name):
    audio, end_at = whole(by_name["sub100100a00000.wav"])  # 저 식당 음식이 정말 맛있나 봐요.
    sessions = HandsFreeSessions(FakeWords(lambda s: "저 식당 음식이 정말 맛있나 봐요."), OPTIONS, hold_s=0.0)
    token = sessions.open("c1")
    [reported] = turns_at(listen(sessions, token, audio))
    assert reported - end_at <= OPTIONS.finished_wait_s + 0.2
    sessions.close_all()


def test_words_known_late_end_the_turn_at_once_if_the_pause_was_long_enough(by_name):
    audio, end_at = whole(by_name["sub100100a00000.wav"])
    service = FakeWords(lambda s: "저 식당 음식이 정말 맛있나 봐요.", late=True)
    sessions = HandsFreeSessions(service, OPTIONS, hold_s=0.0)
    token = sessions.open("c1")
    known_at = end_at + 1.0  # past the normal 0.7 s pause: without the words it would have ended already

    def recognise_then(at: float) -> None:
        if at >= known_at:
            service.recognise()

    [reported] = turns_at(listen(sessions, token, audio, before=recognise_then))
    assert known_at <= reported <= known_at + 0.2  # in the reply to the next request (100 ms of audio)
    sessions.close_all()


def test_unsure_words_wait_the_normal_pause(by_name):
    audio, end_at = whole(by_name["sub100100a00000.wav"])
    sessions = HandsFreeSessions(FakeWords(lambda s: "진짜 좋아"), OPTIONS, hold_s=0.0)
    token = sessions.open("c1")
    [reported] = turns_at(listen(sessions, token, audio))
    assert end_at + OPTIONS.silence_s - 0.1 <= reported <= end_at + OPTIONS.silence_s + 0.2
    sessions.close_all()
