"""Synthesizers: espeak-ng (offline, Korean voice) and OpenAI-compatible /v1/audio/speech.

Each returns a WAV file (16-bit PCM, the sample rate in its header) as bytes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from voiceqna.errors import EngineUnavailable

logger = logging.getLogger(__name__)


class Synthesizer(Protocol):
    def synthesize(self, text: str) -> bytes:
        """Korean text in, WAV bytes out."""


class EspeakSynthesizer:
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


class OpenAISynthesizer:
    """Any server speaking OpenAI's /v1/audio/speech, asked for WAV."""

    def __init__(self, api_key: str, model: str, voice: str, base_url: str = "", timeout_s: float = 30.0) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=1)
        self.model = model
        self.voice = voice
        self.description = f"OpenAI-compatible speech {model}/{voice}"

    def synthesize(self, text: str) -> bytes:
        import openai

        try:
            response = self.client.audio.speech.create(
                model=self.model, voice=self.voice, input=text, response_format="wav"
            )
            return response.content
        except openai.OpenAIError as exc:
            logger.warning("Speech engine failed: %s", exc)
            raise EngineUnavailable(f"The speech engine did not answer ({type(exc).__name__}).") from None


class SilentSynthesizer:
    """TTS_ENGINE=none: answers are text only."""

    description = "none (text only)"

    def synthesize(self, text: str) -> bytes:
        return b""
