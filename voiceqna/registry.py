"""Which engines exist for each stage and which module builds each: a new engine is one file
(with a `build(settings)` function) plus one line in ENGINES.

Settings validation, GET /info and README's engine table all come from this list.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

STAGES = {"asr": "ASR_ENGINE", "chat": "CHAT_ENGINE", "tts": "TTS_ENGINE", "store": "STORE"}
"""Each stage and the setting that picks its engine."""


@dataclass(frozen=True)
class EngineSpec:
    stage: str
    name: str
    """The value of the stage's setting that picks this engine."""
    module: str
    """A module with `build(settings) -> engine`, imported only when the engine is picked."""
    summary: str
    """One line for README's engine table."""
    requires: tuple[str, ...] = ()
    """Settings that must not be empty for this engine (field names of Settings)."""
    hint: str = ""
    """Added to the start-up error when a required setting is missing."""


KEY_HINT = "or OPENAI_API_KEY when the stage uses OPENAI_BASE_URL's server; any value for a server without keys"

ENGINES: tuple[EngineSpec, ...] = (
    EngineSpec("asr", "whisper", "voiceqna.engines.asr_whisper",
               "faster-whisper in this process; the bundled Whisper base works offline (default)"),
    EngineSpec("asr", "openai", "voiceqna.engines.asr_openai",
               "any server with OpenAI's /v1/audio/transcriptions (whisper-1, gpt-4o-transcribe, speaches, vLLM); "
               "only the speech the VAD hears is sent",
               requires=("asr_api_key",), hint=KEY_HINT),
    EngineSpec("chat", "offline", "voiceqna.engines.chat_offline",
               "answers from a Korean knowledge base file, offline (default without a key)"),
    EngineSpec("chat", "openai", "voiceqna.engines.chat_openai",
               "any server with OpenAI's /v1/chat/completions (OpenAI, vLLM, Ollama), streamed",
               requires=("chat_api_key",), hint=KEY_HINT),
    EngineSpec("chat", "llamacpp", "voiceqna.engines.chat_llamacpp",
               "a GGUF model in this process (llama.cpp through xllamacpp), streamed",
               requires=("llm_model",), hint="a .gguf file, a name under models/, or owner/repo:file.gguf"),
    EngineSpec("tts", "espeak", "voiceqna.engines.tts_espeak",
               "espeak-ng's Korean voice, offline, robotic (default)"),
    EngineSpec("tts", "openai", "voiceqna.engines.tts_openai",
               "any server with OpenAI's /v1/audio/speech, WAV per sentence",
               requires=("tts_api_key",), hint=KEY_HINT),
    EngineSpec("tts", "none", "voiceqna.engines.tts_none", "no speech: answers are text only"),
    EngineSpec("store", "sqlite", "voiceqna.engines.store_sqlite",
               "one SQLite file in DATA_DIR (default; replicas on one machine may share it)"),
    EngineSpec("store", "mongodb", "voiceqna.engines.store_mongo",
               "MongoDB, shared by app replicas on several machines",
               requires=("mongodb_uri",), hint="e.g. mongodb://localhost:27017"),
)


def names(stage: str) -> tuple[str, ...]:
    return tuple(spec.name for spec in ENGINES if spec.stage == stage)


def spec(stage: str, name: str) -> EngineSpec:
    for candidate in ENGINES:
        if candidate.stage == stage and candidate.name == name:
            return candidate
    raise ValueError(f"{STAGES[stage]}={name!r}: use one of {', '.join(names(stage))}")


def problems(stage: str, name: str, settings: Any) -> list[str]:
    """What is wrong with picking `name` for `stage` under `settings` (empty: nothing)."""
    try:
        chosen = spec(stage, name)
    except ValueError as exc:
        return [str(exc)]
    missing = [r.upper() for r in chosen.requires if not getattr(settings, r)]
    if not missing:
        return []
    hint = f" ({chosen.hint})" if chosen.hint else ""
    return [f"{STAGES[stage]}={name} needs {' and '.join(missing)}{hint}"]


def build(stage: str, name: str, settings: Any) -> Any:
    """The engine `name` for `stage`, built by its module from `settings`."""
    return importlib.import_module(spec(stage, name).module).build(settings)


def markdown_table() -> str:
    """README's table of engines (tests/test_architecture.py checks README holds it)."""
    rows = ["| setting | value | engine |", "| --- | --- | --- |"]
    rows += [f"| `{STAGES[s.stage]}` | `{s.name}` | {s.summary} |" for s in ENGINES]
    return "\n".join(rows) + "\n"
