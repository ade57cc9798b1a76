"""faster-whisper's own default call, `transcribe(audio, language="ko")`, as a recognizer: the baseline the app is measured against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voiceqna.audio import SAMPLE_RATE
from voiceqna.config import WhisperOptions
from voiceqna.engines.asr_whisper import load_model
from voiceqna.engines.base import BaseEngine
from voiceqna.ports import Recognizer, Transcript


class DefaultCall(BaseEngine, Recognizer):
    """`WhisperModel.transcribe(audio, language="ko")` with every other argument left at its
    default (30 s window, timestamps, beam 5, temperature fallback up to 1.0, no VAD), on the
    same loaded model as the app's recognizer (one model per process and configuration)."""

    def __init__(self, options: WhisperOptions, models_dir: Path) -> None:
        self.options = options
        self.model, self.device, self.compute_type = load_model(options, models_dir)

    @property
    def description(self) -> str:
        return f"faster-whisper default call, Whisper {Path(self.options.model).name} ({self.device}, {self.compute_type})"

    def transcribe(self, samples: np.ndarray) -> Transcript:
        segments, _ = self.model.transcribe(samples, language="ko")
        return Transcript(" ".join(s.text.strip() for s in segments).strip())

    def warm_up(self) -> None:
        self.transcribe(np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32))
