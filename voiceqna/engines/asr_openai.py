"""Recognizer "openai": any server with OpenAI's /v1/audio/transcriptions (whisper-1,
gpt-4o-transcribe, speaches, vLLM), Korean fixed; the VAD gate runs here first, so silence
never reaches the server and only the speech is sent (16 kHz mono WAV)."""

from __future__ import annotations

import logging

import numpy as np

from voiceqna.audio import encode_wav
from voiceqna.config import Settings
from voiceqna.engines import asr_vad
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import Recognizer, Transcript

logger = logging.getLogger(__name__)


def build(settings: Settings) -> "OpenAIRecognizer":
    return OpenAIRecognizer(
        api_key=settings.asr_api_key,
        model=settings.asr_model,
        base_url=settings.asr_base_url,
        timeout_s=settings.openai_timeout_s,
        vad_threshold=settings.whisper.vad_threshold,
    )


class OpenAIRecognizer(BaseEngine, Recognizer):
    """Thread-safe: the VAD model and the HTTP client are both shared safely."""

    def __init__(
        self, api_key: str, model: str, base_url: str = "", timeout_s: float = 30.0, vad_threshold: float = 0.35
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=1)
        self.model = model
        self.vad_threshold = vad_threshold
        self.description = f"OpenAI-compatible transcription {model}"  # public (GET /info): no address, no key
        logger.info("Recognizer: OpenAI-compatible %s at %s", model, base_url or "api.openai.com")

    def transcribe(self, samples: np.ndarray) -> Transcript:
        import openai

        speech = asr_vad.speech(samples, self.vad_threshold)
        if not speech.size:
            return Transcript("")
        try:
            result = self.client.audio.transcriptions.create(
                model=self.model,
                file=("speech.wav", encode_wav(speech), "audio/wav"),
                language="ko",
                response_format="json",
            )
        except openai.OpenAIError as exc:
            logger.warning("Recognition server failed: %s", exc)
            raise EngineUnavailable(
                f"The recognition server did not answer ({type(exc).__name__}): check ASR_BASE_URL, "
                "ASR_API_KEY and ASR_MODEL (or OPENAI_BASE_URL, OPENAI_API_KEY) and the server, then try again."
            ) from None
        text = (getattr(result, "text", "") or "").strip()
        return Transcript("" if asr_vad.is_hallucination(text) else text)

    def warm_up(self) -> None:
        asr_vad.warm_up()

    def close(self) -> None:
        self.client.close()
