"""ChatService: the in-process API that the page and the REST routes both call.

create / get / send_text / send_audio / reset. A turn is: decode → recognise → answer →
speak → store; the store write comes last and is one transaction, so an error at any
stage leaves the conversation exactly as it was.
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
import zlib
from dataclasses import dataclass, field
from typing import Sequence

from voiceqna import audio
from voiceqna.asr import Recognizer
from voiceqna.chat import ChatEngine, Turn
from voiceqna.errors import AudioTooLarge, EngineUnavailable, InvalidInput, VoiceQnAError, shown
from voiceqna.store import ConversationStore, Message, check_id
from voiceqna.tts import Synthesizer

logger = logging.getLogger(__name__)

ROLES = ("user", "assistant", "system")
NOT_HEARD = "죄송해요, 잘 듣지 못했어요. 다시 한 번 말씀해 주세요."


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 25 * 1024 * 1024
    max_audio_s: float = 120.0
    max_message_chars: int = 2000


@dataclass
class Timings:
    """Milliseconds spent in each stage of one turn (0 for stages that did not run)."""

    decode_ms: float = 0.0
    asr_ms: float = 0.0
    chat_ms: float = 0.0
    tts_ms: float = 0.0
    store_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True)
class TurnResult:
    conversation_id: str
    transcript: str
    """What the user said (recognised) or typed; empty when no speech was heard."""
    text: str
    """The assistant's answer."""
    audio: bytes
    """The answer as WAV; empty when speech synthesis is off or failed (see audio_error)."""
    timings: Timings = field(default_factory=Timings)
    stored: bool = True
    """False when nothing was heard: such a turn is answered but not kept."""
    audio_error: str = ""


@dataclass(frozen=True)
class EngineInfo:
    recognizer: str
    chat: str
    tts: str
    store: str


class _Stopwatch:
    def __init__(self, timings: Timings, name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        setattr(self.timings, self.name, (time.perf_counter() - self.start) * 1000.0)


class ChatService:
    def __init__(
        self,
        recognizer: Recognizer,
        chat: ChatEngine,
        synthesizer: Synthesizer,
        store: ConversationStore,
        limits: Limits = Limits(),
    ) -> None:
        self.recognizer = recognizer
        self.chat = chat
        self.synthesizer = synthesizer
        self.store = store
        self.limits = limits
        # Striped locks: turns on one conversation run one after another (history, then
        # append), turns on different conversations run in parallel. Bounded memory.
        self._locks = [threading.Lock() for _ in range(64)]

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(*(getattr(x, "description", type(x).__name__) for x in (
            self.recognizer, self.chat, self.synthesizer, self.store)))

    def create(self, messages: Sequence[Message] = ()) -> str:
        return self.store.create([self._checked(m) for m in messages])

    def get(self, conversation_id: str) -> list[Message]:
        return self.store.messages(check_id(conversation_id))

    def reset(self, conversation_id: str) -> None:
        self.store.reset(check_id(conversation_id))

    def send_text(self, conversation_id: str, text: str, role: str = "user") -> TurnResult:
        started = time.perf_counter()
        message = self._checked(Message(role=role, text=text))
        if not _visible(message.text):
            raise InvalidInput("The message is empty: type or say something first.")
        # _answer reads the history before any engine runs, so an unknown id is NotFound first.
        return self._answer(conversation_id, message, Timings(), started)

    def send_audio(self, conversation_id: str, data: bytes) -> TurnResult:
        started = time.perf_counter()
        if len(data) > self.limits.max_upload_bytes:
            raise AudioTooLarge(
                f"The upload is {len(data) / 1e6:.1f} MB, over the limit of "
                f"{self.limits.max_upload_bytes / 1e6:.1f} MB: send a shorter clip."
            )
        self.get(conversation_id)  # NotFound before decoding and recognition
        timings = Timings()
        with _Stopwatch(timings, "decode_ms"):
            samples = audio.decode(data, max_seconds=self.limits.max_audio_s)
        with _Stopwatch(timings, "asr_ms"):
            transcript = self._recognise(samples)
        if not transcript:
            return self._not_heard(conversation_id, timings, started)
        message = Message(role="user", text=transcript, audio=audio.encode_wav(samples))
        return self._answer(conversation_id, message, timings, started)

    def _recognise(self, samples) -> str:
        try:
            return unicodedata.normalize("NFC", self.recognizer.transcribe(samples).text)
        except VoiceQnAError:
            raise
        except Exception as exc:  # the engine's own failure, whatever its type
            logger.exception("Recognizer failed")
            raise EngineUnavailable(f"The speech recognizer failed ({type(exc).__name__}): try again.") from None

    def _answer(self, conversation_id: str, message: Message, timings: Timings, started: float) -> TurnResult:
        with self._lock(conversation_id):
            history = [Turn(m.role, m.text) for m in self.get(conversation_id)]
            with _Stopwatch(timings, "chat_ms"):
                answer = self._reply(history, message.text)
            with _Stopwatch(timings, "tts_ms"):
                speech, audio_error = self._speak(answer)
            with _Stopwatch(timings, "store_ms"):
                self.store.append(conversation_id, [message, Message("assistant", answer, speech)])
        timings.total_ms = (time.perf_counter() - started) * 1000.0
        return TurnResult(conversation_id, message.text, answer, speech, timings, True, audio_error)

    def _not_heard(self, conversation_id: str, timings: Timings, started: float) -> TurnResult:
        with _Stopwatch(timings, "tts_ms"):
            speech, audio_error = self._speak(NOT_HEARD)
        timings.total_ms = (time.perf_counter() - started) * 1000.0
        return TurnResult(conversation_id, "", NOT_HEARD, speech, timings, False, audio_error)

    def _reply(self, history: list[Turn], question: str) -> str:
        try:
            answer = self.chat.reply(history, question)
        except VoiceQnAError:
            raise
        except Exception as exc:
            logger.exception("Chat engine failed")
            raise EngineUnavailable(f"The chat engine failed ({type(exc).__name__}): try again.") from None
        return unicodedata.normalize("NFC", answer.strip())

    def _speak(self, text: str) -> tuple[bytes, str]:
        """A failed synthesis does not lose the turn: the answer is kept as text only."""
        try:
            return self.synthesizer.synthesize(text), ""
        except Exception as exc:
            logger.warning("Speech synthesis failed, answering in text only: %s", exc)
            # Our own errors are written for the user; anything else shows only its type (details in the log).
            why = str(exc)[:200] if isinstance(exc, VoiceQnAError) else type(exc).__name__
            return b"", f"The answer could not be spoken ({why}); it is kept as text."

    def _checked(self, message: Message) -> Message:
        if message.role not in ROLES:
            raise InvalidInput(f"Unknown role {shown(message.role)}: use one of {', '.join(ROLES)}.")
        if not isinstance(message.text, str):
            raise InvalidInput("The message must be a string.")
        text = unicodedata.normalize("NFC", message.text).strip()
        if "\x00" in text:
            raise InvalidInput("The message contains a NUL character: remove it and send again.")
        if not text.isascii() and not _encodable(text):
            raise InvalidInput("The message contains a lone surrogate (half of a UTF-16 pair, e.g. \\ud800): "
                               "send valid Unicode text.")
        if message.role == "user" and not _visible(text) and not message.audio:
            raise InvalidInput("The message is empty (or only invisible characters): type or say something first.")
        if len(text) > self.limits.max_message_chars:
            raise InvalidInput(
                f"The message has {len(text)} characters, over the limit of {self.limits.max_message_chars}."
            )
        return Message(message.role, text, message.audio)

    def _lock(self, conversation_id: str) -> threading.Lock:
        return self._locks[zlib.crc32(conversation_id.encode()) % len(self._locks)]


def _visible(text: str) -> bool:
    """True when something besides spaces, controls and zero-width marks is left to read."""
    return any(unicodedata.category(c)[0] not in "ZC" for c in text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
