"""All settings, read once from the environment (and an optional `.env`) into one frozen object.

Nothing else in the project reads `os.environ`: the composition root (`app.py`) calls
`Settings.from_env()` and passes the object (or the parts an engine needs) down.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from voiceqna import registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WhisperOptions:
    """The in-process recognizer (faster-whisper). Each field is read from WHISPER_<FIELD>."""

    model: str = "base"
    """A CTranslate2 folder, a name under models/, a size name (base, small, large-v3) or a hub id."""
    device: str = "auto"
    """auto (CUDA when present), cpu or cuda."""
    compute_type: str = "auto"
    """auto (int8 on CPU, float16 on CUDA), or any CTranslate2 compute type."""
    cpu_threads: int = 0
    """Threads per transcription on CPU; 0: one per available core, at most 4."""
    workers: int = 2
    """Transcriptions that may run at once (CTranslate2 `num_workers`; the weights are shared)."""
    beam_size: int = 5
    """1 is greedy (fastest); 5 (faster-whisper's default) keeps the short window within a CER
    point of faster-whisper's default call; 2 is ~1.5 points worse, 10 % less CPU (README
    "Measuring accuracy")."""
    window_s: int = 10
    """Shortest audio window (s) Whisper encodes for speech under 30 s; below ~10 s accuracy
    drops. 30 turns the short window off (faster-whisper's standard 30 s window)."""
    temperatures: tuple[float, ...] = (0.0, 0.4)
    """Beam search first; one sampled fallback at 0.4 when the text looks degenerate."""
    vad_threshold: float = 0.35
    """Silero speech probability above which audio counts as speech. faster-whisper's 0.5
    dropped the first 2.3 s of a loud, clear clip of the test recordings; 0.35 keeps it."""
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4


@dataclass(frozen=True)
class Settings:
    # --- recognizer ---
    asr_engine: str = "whisper"
    """Which recognizer runs (see voiceqna/registry.py)."""
    whisper: WhisperOptions = field(default_factory=WhisperOptions)
    """WHISPER_MODEL, WHISPER_DEVICE, … (one variable per field of WhisperOptions)."""
    models_dir: Path = PROJECT_ROOT / "models"
    """Where local CTranslate2 models live (and where the bundled base model is assembled)."""

    # --- chat engine ---
    chat_engine: str = "auto"
    """auto (openai when OPENAI_API_KEY is set, else offline), openai or offline."""
    openai_api_key: str = ""
    openai_base_url: str = ""
    """Empty for api.openai.com; any OpenAI-compatible server otherwise (vLLM, Ollama, …)."""
    openai_chat_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 30.0
    chat_history_messages: int = 10
    """How many earlier messages of the conversation the chat engine sees."""
    knowledge_base: Path = PROJECT_ROOT / "voiceqna" / "engines" / "knowledge_ko.json"
    """The offline engine's Korean Q&A file (JSON); replace it with your own."""

    # --- speech synthesis ---
    tts_engine: str = "espeak"
    """espeak (offline, espeak-ng -v ko), openai (/v1/audio/speech) or none."""
    tts_normalize: bool = True
    """Read numbers, dates, times, units and Latin letters the Korean way before speaking
    (voiceqna.textnorm.spoken: 3시 → 세 시, 2026년 → 이천이십육 년, KTX → 케이티엑스)."""
    espeak_voice: str = "ko"
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"

    # --- store ---
    store: str = "sqlite"
    """sqlite (a file in data_dir) or mongodb."""
    data_dir: Path = PROJECT_ROOT / "data"
    mongodb_uri: str = ""
    mongodb_database: str = "voiceqna"
    mongodb_collection: str = "chats"

    # --- limits ---
    max_upload_mb: float = 25.0
    max_audio_s: float = 120.0
    max_message_chars: int = 2000
    body_timeout_s: float = 60.0
    """Seconds a client may take to send a request body; a slower (or stalled) upload gets 408."""
    max_waiting_audio_turns: int = 64
    """Spoken turns that may queue for the recognizer; beyond that, 503 with Retry-After (load shedding)."""

    # --- front doors ---
    host: str = "0.0.0.0"
    """Interface `python app.py` listens on (--host wins); 0.0.0.0 is every one, as a Space needs."""
    port: int = 0
    """Port (--port wins); 0 means 7860 for the page (a Space's port) or 5000 with --api-only."""
    api_key: str = ""
    """When set, REST requests need `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    cors_origins: str = ""
    """Comma-separated origins allowed to call the REST API from a browser; * for any."""
    api_url: str = ""
    """When set, the page talks to this remote REST API instead of the in-process service."""

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @property
    def resolved_chat_engine(self) -> str:
        if self.chat_engine == "auto":
            return "openai" if self.openai_api_key else "offline"
        return self.chat_engine

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv_path: Path | None = PROJECT_ROOT / ".env"
    ) -> "Settings":
        """Read every field from its upper-case environment variable (DATA_DIR, …); a field that
        is itself a group of options reads each of them as PREFIX_FIELD (WHISPER_MODEL, …).

        Values in the environment win over those in the `.env` file. Raises ValueError, naming
        the variable and the fix, for a value that is not valid.
        """
        values: dict[str, str | None] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update(dotenv_values(dotenv_path))
        values.update(os.environ if environ is None else environ)
        settings = _read(cls, values, prefix="")
        settings.validate()
        return settings

    def validate(self) -> None:
        problems = []
        for stage, setting in registry.STAGES.items():
            name = getattr(self, setting.lower())
            if stage == "chat" and name == "auto":
                name = self.resolved_chat_engine
            problems += registry.problems(stage, name, self)
        if self.whisper.device not in ("auto", "cpu", "cuda"):
            problems.append(f"WHISPER_DEVICE={self.whisper.device!r}: use one of auto, cpu, cuda")
        if self.whisper.window_s < 1:
            problems.append(
                f"WHISPER_WINDOW_S={self.whisper.window_s}: use whole seconds, 10 (the default) or more; "
                "30 turns the short window off"
            )
        if not self.whisper.temperatures:
            problems.append("WHISPER_TEMPERATURES is empty: give e.g. 0,0.4")
        if problems:
            raise ValueError("; ".join(problems))


def _read(kind: type, values: Mapping[str, str | None], prefix: str) -> object:
    """An instance of the dataclass `kind` from `values`, each field from PREFIX + FIELD."""
    kwargs = {}
    for f in fields(kind):
        default = f.default_factory() if f.default is MISSING else f.default
        variable = (prefix + f.name).upper()
        if is_dataclass(default):
            kwargs[f.name] = _read(type(default), values, variable + "_")
            continue
        raw = values.get(variable)
        if raw is not None and raw != "":
            kwargs[f.name] = _convert(variable, raw, default)
    return kind(**kwargs)


def _convert(variable: str, raw: str, default: object) -> object:
    kind = type(default)
    try:
        if kind is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if kind in (int, float):
            return kind(raw)
        if kind is tuple:
            return tuple(float(part) for part in raw.split(",") if part.strip())
        if issubclass(kind, Path):
            return Path(raw).expanduser()
        return raw
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
