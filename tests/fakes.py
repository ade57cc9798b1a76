"""A fake recognizer for the fast tier: it hears one set sentence in any sound and nothing in
silence, without loading a model (the real Whisper model runs in the `model` tier)."""

from __future__ import annotations

import threading

import numpy as np

from voiceqna.audio import SAMPLE_RATE
from voiceqna.ports import Recognizer, Transcript

FAKE_HEARD = "한국의 수도는 어디야?"
"""What FakeRecognizer hears in any sound: a question the offline knowledge base answers (서울)."""


class FakeRecognizer(Recognizer):
    """Recognizer contract (ports.Recognizer) with no model: `text` when the samples' RMS is over
    `threshold`, "" otherwise. Keeps the length of every clip it was given (`seconds`)."""

    description = "fake recognizer (tests)"

    def __init__(self, text: str = FAKE_HEARD, threshold: float = 0.005) -> None:
        self.text = text
        self.threshold = threshold
        self.seconds: list[float] = []
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        with self._lock:
            self.seconds.append(len(samples) / SAMPLE_RATE)
        loud = samples.size > 0 and float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) > self.threshold
        return Transcript(self.text if loud else "")

    def warm_up(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""
