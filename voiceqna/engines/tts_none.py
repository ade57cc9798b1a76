"""Synthesizer "none" (TTS_ENGINE=none): answers are text only."""

from __future__ import annotations

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.ports import Synthesizer


def build(settings: Settings) -> "SilentSynthesizer":
    return SilentSynthesizer()


class SilentSynthesizer(BaseEngine, Synthesizer):
    description = "none (text only)"

    def synthesize(self, text: str) -> bytes:
        return b""
