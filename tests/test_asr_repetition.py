"""Each sentence is heard once: real clips with silence or room noise around them, and clips cut to 1–3 s.

The bundled Whisper base model on the real recordings (../shared/data/korean-read-speech), as
the app runs it and as faster-whisper's default call runs it, on the same clips. These are the
cases that made the short-window decoder (no timestamps, silence after the speech) say a
sentence twice, loop on a word, or stop early. Nothing here is timed: speed is measured by
benchmarks/accuracy.py against the default call in the same run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_settings
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.evaluation import metrics, perturb
from voiceqna.evaluation.baseline import DefaultCall

SHORT_S = 4.0
"""Padded sets: the clips of up to 4 s (13 of 30), where a silence-padded window is mostly silence."""


@pytest.fixture(scope="module")
def provoking(read_speech) -> list[perturb.Piece]:
    """Short clips with 0.5–3 s of silence, or of room noise, before and/or after them (seed 0),
    and the 27 pieces of 1–3 s cut from the clips at pauses between words."""
    short = {c.path.stem for c in read_speech if decode(c.path.read_bytes()).size <= SHORT_S * SAMPLE_RATE}
    padded = [p for kind in ("silence", "noise") for p in perturb.padded_set(kind)
              if p.name.split("-", 1)[1].removesuffix(".wav") in short]
    return padded + perturb.cut_set()


@pytest.fixture(scope="module")
def heard(recognizer, provoking) -> list[str]:
    return [recognizer.transcribe(p.samples).text for p in provoking]


@pytest.fixture(scope="module")
def heard_by_default(provoking) -> list[str]:
    settings = make_settings(Path("/nonexistent"))
    default = DefaultCall(settings.whisper, settings.models_dir)
    return [default.transcribe(p.samples).text for p in provoking]


@pytest.mark.slow
def test_no_sentence_is_said_twice(provoking, heard):
    assert len(provoking) == 2 * 13 + 27
    repeated = [(p.name, p.text, h) for p, h in zip(provoking, heard) if metrics.repeated_span(p.text, h)]
    assert repeated == []
    assert sum(1 for h in heard if h) >= len(heard) - 1, "speech was heard in (nearly) every clip"


@pytest.mark.slow
def test_cer_within_one_point_of_the_default_call(provoking, heard, heard_by_default):
    references = [p.text for p in provoking]
    ours, theirs = metrics.cer(references, heard), metrics.cer(references, heard_by_default)
    print(f"CER on {len(provoking)} padded and cut clips: app {ours:.3f}, default call {theirs:.3f}")
    assert ours <= theirs + 0.01


@pytest.mark.parametrize("name, side", [
    ("sub100101a00037", "head"),  # '양념에 양념에 양념에 양념에' before timestamps
    ("sub100100a00073", "tail"),  # '배고파서, 배고파서, 배고파서, 배'
    ("sub100111a00046", "head"),  # '여기 있는 이외에 있는 이외에 있는 이'
    ("sub100120a00219", "tail"),  # '양파, 양파, 양파, 양파, 양파' with timestamps but no end of speech
])
def test_one_second_cut_mid_word_does_not_loop(recognizer, read_speech, name, side):
    """The first or last second of a clip, cut wherever it falls: no reference, but nothing of
    4 syllables or more may come twice."""
    (clip,) = [c for c in read_speech if c.path.stem == name]
    samples = decode(clip.path.read_bytes())
    piece = samples[:SAMPLE_RATE] if side == "head" else samples[-SAMPLE_RATE:]
    text = recognizer.transcribe(piece).text
    assert metrics.repeated_span("", text) == "", text


def test_words_after_the_end_of_speech_are_dropped(recognizer, read_speech):
    """13.7 s of speech then 2 s of silence: decoded with timestamps, Whisper started the
    sentence over at 13.9 s, after the speech; that segment is not part of the transcript."""
    (clip,) = [c for c in read_speech if c.path.stem == "sub100112a00145"]
    samples = np.concatenate([decode(clip.path.read_bytes()), np.zeros(2 * SAMPLE_RATE, np.float32)])
    text = recognizer.transcribe(samples).text
    assert metrics.repeated_span(clip.text, text) == "", text
    assert metrics.cer([clip.text], [text]) < 0.25, text


def test_text_decoded_after_the_speech_end_is_left_out(recognizer):
    """The parsing itself: segments that start at or after the end of speech are dropped."""
    window = recognizer.window
    tokenizer = window.tokenizer

    def at(seconds: float) -> int:
        return tokenizer.timestamp_begin + round(seconds / 0.02)

    said = tokenizer.encode(" 어서 오십시오.")
    tokens = [at(0.0), *said, at(1.2), at(1.6), *said, at(2.4)]
    assert tokenizer.decode(window.spoken_part(tokens, 1.5)).strip() == "어서 오십시오."
    assert tokenizer.decode(window.spoken_part(tokens, 2.0)).strip() == "어서 오십시오. 어서 오십시오."
