"""The hands-free endpointer on real Korean speech: the shared recordings trimmed to their speech
and joined by pauses of their own room noise (voiceqna.evaluation.streams), fed like a browser
streams a microphone. Turn times are stream times (seconds of audio), never wall-clock times."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from faster_whisper.vad import get_vad_model

from tests.conftest import make_settings
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import HandsFreeOptions, Settings
from voiceqna.endpointing import Endpointer, SpeechScorer, SpeechStarted, State, TurnEnded
from voiceqna.evaluation import streams
from voiceqna.evaluation.metrics import char_errors

ONE_STRETCH = ["sub100100a00000.wav", "sub100100a00073.wav", "sub100101a00037.wav", "sub100102a00011.wav",
               "sub100111a00046.wav", "sub100112a00070.wav", "sub100121a00048.wav", "sub100122a00050.wav"]
"""Questions with no pause of 0.5 s or more inside (Silero offline; benchmarks/endpointing.py)."""


@pytest.fixture(scope="module")
def clips(read_speech) -> dict[str, tuple[streams.Recording, str]]:
    """name -> (the recording trimmed to its speech, with its room noise; the sentence read)."""
    by_name = {c.path.name: c for c in read_speech}
    return {name: (streams.Recording.of(decode(by_name[name].path.read_bytes())), by_name[name].text)
            for name in ONE_STRETCH}


def recording(clips, i: int) -> streams.Recording:
    return clips[ONE_STRETCH[i]][0]


def run(audio: np.ndarray, chunk_s: float = 0.16, endpointer: Endpointer | None = None) -> list:
    """Every event of the stream fed in chunks of `chunk_s`, then flushed."""
    endpointer = endpointer or Endpointer()
    size = max(1, int(chunk_s * SAMPLE_RATE))
    events = [e for start in range(0, audio.size, size) for e in endpointer.feed(audio[start: start + size])]
    return events + endpointer.flush()


def turns(events: list) -> list[TurnEnded]:
    return [e for e in events if isinstance(e, TurnEnded)]


def holds(turn: TurnEnded, span: tuple[float, float]) -> bool:
    """The turn's audio holds the whole of that speech."""
    return turn.audio_start_s <= span[0] and turn.audio_start_s + turn.seconds >= span[1]


def test_each_question_alone_is_one_turn_holding_all_its_speech(clips):
    for i, name in enumerate(ONE_STRETCH):
        stream = streams.join([recording(clips, i)], [], lead_s=1.0, tail_s=2.0, seed=i)
        events = run(stream.audio)
        assert [type(e) for e in events] == [SpeechStarted, TurnEnded], name
        turn = events[1]
        assert turn.reason == "silence"
        assert holds(turn, stream.speech[0]), (name, turn, stream.speech)
        # The pad before the speech is there, so the first syllable is not cut.
        assert turn.audio_start_s <= turn.start_s - 0.25


def test_the_cut_turn_transcribes_like_the_recording(clips, recognizer):
    for i in (0, 3):
        speech, text = clips[ONE_STRETCH[i]]
        stream = streams.join([speech], [], lead_s=1.5, tail_s=2.0, seed=i)
        [turn] = turns(run(stream.audio))
        assert char_errors(text, recognizer.transcribe(turn.audio).text).rate <= 0.3


def test_two_questions_2_s_apart_are_two_turns(clips):
    for i in range(len(ONE_STRETCH)):
        j = (i + 1) % len(ONE_STRETCH)
        stream = streams.join([recording(clips, i), recording(clips, j)], [2.0], seed=i)
        found = turns(run(stream.audio))
        assert len(found) == 2, (ONE_STRETCH[i], ONE_STRETCH[j], found)
        assert holds(found[0], stream.speech[0]) and holds(found[1], stream.speech[1])
        assert found[0].end_s < stream.speech[1][0]


def test_a_pause_of_0_3_s_does_not_end_the_turn(clips):
    for i in range(len(ONE_STRETCH)):
        j = (i + 1) % len(ONE_STRETCH)
        stream = streams.join([recording(clips, i), recording(clips, j)], [0.3], seed=i)
        assert stream.speech[1][0] - stream.speech[0][1] == pytest.approx(0.3, abs=1e-3)
        found = turns(run(stream.audio))
        assert len(found) == 1, (ONE_STRETCH[i], ONE_STRETCH[j], found)
        assert holds(found[0], (stream.speech[0][0], stream.speech[1][1]))


def test_a_turn_that_goes_on_is_cut_at_max_turn_s_and_loses_no_audio(clips):
    stream = streams.join([recording(clips, i) for i in range(4)], [0.3] * 3, seed=3)  # ~12 s of speech
    options = HandsFreeOptions(max_turn_s=4.0)
    found = turns(run(stream.audio, endpointer=Endpointer(options)))
    assert len(found) >= 3
    assert [t.reason for t in found[:-1]] == ["max_length"] * (len(found) - 1)
    assert all(t.end_s - t.start_s <= 4.0 for t in found)
    for before, after in zip(found, found[1:]):  # no audio in two turns
        assert after.audio_start_s >= before.audio_start_s + before.seconds - 1e-9
    speech = (stream.speech[0][0], stream.speech[-1][1])
    covered = sum(max(0.0, min(speech[1], t.audio_start_s + t.seconds) - max(speech[0], t.audio_start_s)) for t in found)
    assert covered >= 0.97 * (speech[1] - speech[0])


def test_silence_and_noise_alone_start_no_turn(clips):
    rng = np.random.default_rng(1)
    quiet = [recording(clips, i).room_tone(8.0, seed=i) for i in range(len(ONE_STRETCH))]
    loud_room = [recording(clips, 0).room_tone(8.0, seed=9, gain_db=20)]
    white = [(rng.standard_normal(8 * SAMPLE_RATE) * 10 ** (db / 20)).astype(np.float32) for db in (-60, -40, -20)]
    for audio in quiet + loud_room + white + [np.zeros(8 * SAMPLE_RATE, dtype=np.float32)]:
        endpointer = Endpointer()
        assert run(audio, endpointer=endpointer) == []
        assert endpointer.state is State.LISTENING


@pytest.mark.parametrize("chunk_s", [0.01, 0.02, 0.1, 0.25, 0.5, 1.0, 0.0731])
def test_any_chunk_size_gives_the_same_turns(clips, chunk_s):
    stream = streams.join([recording(clips, 1), recording(clips, 2), recording(clips, 5)], [2.0, 0.3], seed=5)
    reference = turns(run(stream.audio, chunk_s=0.032))
    found = turns(run(stream.audio, chunk_s=chunk_s))
    assert len(found) == len(reference) == 2
    for a, b in zip(found, reference):
        assert (a.start_s, a.end_s, a.audio_start_s, a.reason) == (b.start_s, b.end_s, b.audio_start_s, b.reason)
        assert np.array_equal(a.audio, b.audio)


def test_scoring_chunk_by_chunk_equals_faster_whisper_scoring_the_whole_stream(clips):
    stream = streams.join([recording(clips, 0), recording(clips, 4)], [1.0], seed=2)
    whole = stream.audio[: stream.audio.size // 512 * 512]
    expected = get_vad_model()(whole).reshape(-1)
    scorer, size = SpeechScorer(), 1234
    got = np.concatenate([scorer(whole[i: i + size])[0] for i in range(0, whole.size, size)])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_half_duplex_ignores_what_the_microphone_hears_while_the_answer_plays(clips):
    first, second = recording(clips, 0), recording(clips, 1)
    endpointer = Endpointer()
    assert turns(run(streams.join([first], [], seed=1).audio, endpointer=endpointer))
    endpointer.start_playback()
    played = streams.join([second], [], lead_s=0.5, tail_s=2.0, seed=2)  # speech as loud as the person's
    assert run(played.audio, endpointer=endpointer) == []
    assert endpointer.state is State.PLAYBACK
    endpointer.stop_playback()
    assert endpointer.state is State.LISTENING
    found = turns(run(streams.join([second], [], seed=3).audio, endpointer=endpointer))
    assert len(found) == 1 and found[0].start_s > played.seconds


def test_playback_drops_a_turn_in_progress(clips):
    stream = streams.join([recording(clips, 2)], [], lead_s=1.0, tail_s=2.0, seed=4)
    endpointer = Endpointer()
    middle = int((stream.speech[0][0] + 1.0) * SAMPLE_RATE)
    assert any(isinstance(e, SpeechStarted) for e in endpointer.feed(stream.audio[:middle]))
    endpointer.start_playback()
    assert endpointer.feed(stream.audio[middle:]) == [] and endpointer.flush() == []


def test_barge_in_reports_speech_during_playback_quickly_and_keeps_it_as_the_next_turn(clips):
    endpointer = Endpointer()
    first = streams.join([recording(clips, 0)], [], seed=1).audio
    run(first, endpointer=endpointer)
    endpointer.start_playback(barge_in=True)
    assert endpointer.state is State.PLAYBACK
    began = first.size / SAMPLE_RATE  # the stream's clock: seconds of audio fed so far
    stream = streams.join([recording(clips, 3)], [], lead_s=1.0, tail_s=2.0, seed=6)
    events = run(stream.audio, endpointer=endpointer)
    started, turn = events[0], events[-1]
    assert isinstance(started, SpeechStarted) and started.barge_in
    speech = (began + stream.speech[0][0], began + stream.speech[0][1])
    assert started.detected_s - speech[0] <= 0.5  # seconds of audio after the speech began
    assert isinstance(turn, TurnEnded) and holds(turn, speech)
    assert endpointer.state is State.LISTENING


def test_barge_in_ignores_an_echo_of_the_answer_far_quieter_than_the_speaker(clips, korean_wav):
    endpointer = Endpointer()
    run(streams.join([recording(clips, 0)], [], seed=1).audio, endpointer=endpointer)
    assert endpointer.voice_db is not None
    answer = decode(korean_wav("저는 한국어로 묻고 답하는 음성 챗봇이에요. 말씀하시면 알아듣고 목소리로 대답해 드려요.").read_bytes())
    for quieter_db, interrupts in ((20, False), (0, True)):
        echo = answer * 10 ** ((endpointer.voice_db - quieter_db - streams.level_db(answer)) / 20)
        echo = echo + recording(clips, 0).room_tone(echo.size / SAMPLE_RATE, seed=quieter_db)
        endpointer.start_playback(barge_in=True)
        events = run(echo.astype(np.float32), endpointer=endpointer)
        assert any(isinstance(e, SpeechStarted) and e.barge_in for e in events) is interrupts, quieter_db
        endpointer.stop_playback()


def test_bad_audio_gets_a_clear_error():
    endpointer = Endpointer()
    with pytest.raises(ValueError, match="int16 PCM"):
        endpointer.feed(np.zeros(1600, dtype=np.int16))
    with pytest.raises(ValueError, match="mono"):
        endpointer.feed(np.zeros((1600, 2), dtype=np.float32))
    assert endpointer.feed(np.zeros(0, dtype=np.float32)) == []


def test_settings_read_handsfree_variables_and_reject_bad_ones(tmp_path):
    settings = make_settings(tmp_path, handsfree_silence_s="0.6", handsfree_max_turn_s="20")
    assert settings.handsfree.silence_s == 0.6 and settings.handsfree.max_turn_s == 20.0
    assert Settings.from_env({}, dotenv_path=None).handsfree == HandsFreeOptions()
    for env, variable in [({"HANDSFREE_NEG_THRESHOLD": "0.7"}, "HANDSFREE_NEG_THRESHOLD"),
                          ({"HANDSFREE_SILENCE_S": "0"}, "HANDSFREE_SILENCE_S"),
                          ({"HANDSFREE_BARGE_IN_THRESHOLD": "0.3"}, "HANDSFREE_BARGE_IN_THRESHOLD")]:
        with pytest.raises(ValueError, match=variable):
            Settings.from_env(env, dotenv_path=None)
    with pytest.raises(ValueError, match="THRESHOLD"):
        Endpointer(dataclasses.replace(HandsFreeOptions(), threshold=1.5))
    # A turn the service would refuse (longer than MAX_AUDIO_S) is never made.
    assert make_settings(tmp_path, max_audio_s="20").endpointer_options.max_turn_s == 20.0
    assert make_settings(tmp_path).endpointer_options == HandsFreeOptions()
