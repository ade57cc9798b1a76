"""Synthesizer "openai": any server with OpenAI's /v1/audio/speech, asked for WAV (plays per sentence)."""

from __future__ import annotations

import logging

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import Synthesizer

logger = logging.getLogger(__name__)


def build(settings: Settings) -> "OpenAISynthesizer":
    return OpenAISynthesizer(
        api_key=settings.tts_api_key,
        model=settings.tts_model,
        voice=settings.tts_voice,
        base_url=settings.tts_base_url,
        timeout_s=settings.openai_timeout_s,
    )


class OpenAISynthesizer(BaseEngine, Synthesizer):
    def __init__(self, api_key: str, model: str, voice: str, base_url: str = "", timeout_s: float = 30.0) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=1)
        self.model = model
        self.voice = voice
        self.description = f"OpenAI-compatible speech {model}/{voice}"  # public: no server address
        logger.info("Speech engine: OpenAI-compatible %s/%s at %s", model, voice, base_url or "api.openai.com")

    def synthesize(self, text: str) -> bytes:
        import openai

        try:
            response = self.client.audio.speech.create(
                model=self.model, voice=self.voice, input=text, response_format="wav"
            )
            return response.content
        except openai.OpenAIError as exc:
            logger.warning("Speech engine failed: %s", exc)
            raise EngineUnavailable(
                f"The speech engine did not answer ({type(exc).__name__}): check TTS_API_KEY, TTS_BASE_URL, "
                "TTS_MODEL and TTS_VOICE (or OPENAI_API_KEY, OPENAI_BASE_URL) and the server."
            ) from None

    def close(self) -> None:
        self.client.close()
