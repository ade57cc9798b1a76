"""Build the engines and the service from settings: the one place that picks implementations
(through `voiceqna.registry`)."""

from __future__ import annotations

from voiceqna import registry
from voiceqna.config import Settings
from voiceqna.ports import ChatEngine, ConversationStore, Recognizer, Synthesizer
from voiceqna.service import ChatService, Limits
from voiceqna.textnorm import spoken


def build_recognizer(settings: Settings) -> Recognizer:
    return registry.build("asr", settings.asr_engine, settings)


def build_chat(settings: Settings) -> ChatEngine:
    return registry.build("chat", settings.resolved_chat_engine, settings)


def build_synthesizer(settings: Settings) -> Synthesizer:
    return registry.build("tts", settings.tts_engine, settings)


def build_store(settings: Settings) -> ConversationStore:
    return registry.build("store", settings.store, settings)


def limits(settings: Settings) -> Limits:
    return Limits(
        max_upload_bytes=settings.max_upload_bytes,
        max_audio_s=settings.max_audio_s,
        max_message_chars=settings.max_message_chars,
        recognitions_at_once=settings.whisper.workers + 1,
        max_waiting_recognitions=settings.max_waiting_audio_turns,
    )


def build_service(settings: Settings, recognizer: Recognizer | None = None) -> ChatService:
    """The whole in-process service; `recognizer` reuses one already loaded (tests, evaluate.py)."""
    return ChatService(
        recognizer=recognizer or build_recognizer(settings),
        chat=build_chat(settings),
        synthesizer=build_synthesizer(settings),
        store=build_store(settings),
        limits=limits(settings),
        speech_text=spoken if settings.tts_normalize else str,
    )
