"""Build the engines and the service from settings. The one place that picks implementations."""

from __future__ import annotations

import logging

from voiceqna.asr import WhisperOptions, WhisperRecognizer
from voiceqna.chat import ChatEngine, OfflineChatEngine, OpenAIChatEngine
from voiceqna.config import Settings
from voiceqna.knowledge import KnowledgeBase
from voiceqna.service import ChatService, Limits
from voiceqna.store import ConversationStore, SQLiteStore
from voiceqna.tts import EspeakSynthesizer, OpenAISynthesizer, SilentSynthesizer, Synthesizer

logger = logging.getLogger(__name__)


def whisper_options(settings: Settings) -> WhisperOptions:
    return WhisperOptions(
        model=settings.whisper_model,
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
        num_workers=settings.whisper_workers,
        beam_size=settings.whisper_beam_size,
        window_s=settings.whisper_window_s,
    )


def build_recognizer(settings: Settings) -> WhisperRecognizer:
    return WhisperRecognizer(whisper_options(settings), settings.models_dir)


def build_chat(settings: Settings) -> ChatEngine:
    if settings.resolved_chat_engine == "openai":
        return OpenAIChatEngine(
            api_key=settings.openai_api_key,
            model=settings.openai_chat_model,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
            history_messages=settings.chat_history_messages,
        )
    return OfflineChatEngine(KnowledgeBase.load(settings.knowledge_base))


def build_synthesizer(settings: Settings) -> Synthesizer:
    if settings.tts_engine == "openai":
        return OpenAISynthesizer(
            api_key=settings.openai_api_key or "unused",
            model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
            base_url=settings.openai_base_url,
            timeout_s=settings.openai_timeout_s,
        )
    if settings.tts_engine == "none":
        return SilentSynthesizer()
    return EspeakSynthesizer(voice=settings.espeak_voice)


def build_store(settings: Settings) -> ConversationStore:
    if settings.store == "mongodb":
        from voiceqna.store_mongo import MongoStore

        return MongoStore(settings.mongodb_uri, settings.mongodb_database, settings.mongodb_collection)
    return SQLiteStore(settings.sqlite_path)


def build_service(settings: Settings, recognizer: WhisperRecognizer | None = None) -> ChatService:
    limits = Limits(
        max_upload_bytes=settings.max_upload_bytes,
        max_audio_s=settings.max_audio_s,
        max_message_chars=settings.max_message_chars,
    )
    return ChatService(
        recognizer=recognizer or build_recognizer(settings),
        chat=build_chat(settings),
        synthesizer=build_synthesizer(settings),
        store=build_store(settings),
        limits=limits,
    )
