"""Synthesizer "espeak": espeak-ng's Korean voice, offline; WAV (16-bit PCM, 22.05 kHz) per call."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import Synthesizer

logger = logging.getLogger(__name__)


def build(settings: Settings) -> "EspeakSynthesizer":
    return EspeakSynthesizer(voice=settings.espeak_voice)


class EspeakSynthesizer(BaseEngine, Synthesizer):
    """espeak-ng's Korean voice: robotic but offline and fast. Answers are cached (LRU)."""

    def __init__(self, voice: str = "ko", speed_wpm: int = 165, cache_size: int = 256) -> None:
        self.binary = shutil.which("espeak-ng")
        if self.binary is None:
            raise EngineUnavailable(
                "espeak-ng is not installed: apt-get install espeak-ng (it is in packages.txt), or set TTS_ENGINE."
            )
        self.voice = voice
        self.speed_wpm = speed_wpm
        self.description = f"espeak-ng ({voice})"
        self.synthesize = lru_cache(maxsize=cache_size)(self._synthesize)

    def _synthesize(self, text: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="voiceqna-tts-") as folder:
            out = Path(folder) / "answer.wav"
            # Text goes through stdin, so a message starting with "-" is never an option.
            command = [self.binary, "-v", self.voice, "-s", str(self.speed_wpm), "-w", str(out), "--stdin"]
            try:
                subprocess.run(command, input=text.encode("utf-8"), check=True, capture_output=True, timeout=60)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                stderr = getattr(exc, "stderr", b"") or b""
                raise EngineUnavailable(
                    f"espeak-ng failed: {stderr.decode(errors='replace').strip() or exc}"
                ) from None
            return out.read_bytes()
