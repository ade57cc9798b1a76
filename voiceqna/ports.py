"""The contracts between the service and its engines: the domain types and one Protocol per stage.

The service imports engines only through these Protocols; every engine module implements one
of them (subclassing it explicitly, which also gives it the no-op `warm_up` and `close`), and
`voiceqna.registry` says which module builds which engine. Audio crosses boundaries as 16 kHz
mono float32 samples (`voiceqna.audio.SAMPLE_RATE`) going in and as WAV bytes coming out.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import ClassVar, Iterator, Optional, Protocol, Sequence, Union

import numpy as np

from voiceqna.errors import EngineUnavailable, NotFound, VoiceQnAError, shown

# --- conversations ---------------------------------------------------------------------------

ROLES = ("user", "assistant", "system")
ID_PATTERN = re.compile(r"\A[0-9a-f]{24}\Z")  # \Z, not $: `$` also accepts a trailing newline


@dataclass(frozen=True)
class Message:
    """One stored message of a conversation."""

    role: str
    text: str
    audio: bytes = b""
    """WAV bytes (or whatever the client stored at /create); empty when there is none."""


@dataclass(frozen=True)
class TextMessage:
    """One earlier message as the chat engine sees it: no audio."""

    role: str
    text: str


def new_id() -> str:
    """An ObjectId-shaped id (the seed stored chats in MongoDB): 4 bytes of time, 8 random bytes."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def check_id(conversation_id: str) -> str:
    if not isinstance(conversation_id, str) or not ID_PATTERN.fullmatch(conversation_id):
        raise NotFound(f"No conversation {shown(conversation_id)}: ids are 24 hexadecimal characters from /create.")
    return conversation_id


# --- one turn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transcript:
    text: str
    """The recognised Korean text; empty when no speech was heard."""


@dataclass
class Timings:
    """Milliseconds: each stage of one turn (0 for stages that did not run), and two moments
    counted from the start of the turn: the chat engine's first token and the first answer
    audio ready to send."""

    decode_ms: float = 0.0
    asr_ms: float = 0.0
    chat_ms: float = 0.0
    tts_ms: float = 0.0
    store_ms: float = 0.0
    total_ms: float = 0.0
    first_token_ms: float = 0.0
    first_audio_ms: float = 0.0


@dataclass(frozen=True)
class TurnResult:
    conversation_id: str
    transcript: str
    """What the user said (recognised) or typed; empty when no speech was heard."""
    text: str
    """The assistant's answer, as stored."""
    audio: bytes
    """The whole answer as one WAV; empty when speech synthesis is off or failed (see audio_error)."""
    timings: Timings = field(default_factory=Timings)
    stored: bool = True
    """False when nothing was heard: such a turn is answered but not kept."""
    audio_error: str = ""
    interrupted: bool = False
    """True when the user cut the answer short (barge-in): `text` is what was played."""
    repeated: bool = False
    """True when this was a retry (the same idempotency key): the first answer, nothing new stored."""


@dataclass(frozen=True)
class EngineInfo:
    """What runs each stage, for /info and the page: names and models, never addresses or keys."""

    recognizer: str
    chat: str
    tts: str
    store: str


# --- the events of a streamed turn, in order: transcript, (sentence, audio)*, then done or error ---


@dataclass(frozen=True)
class Heard:
    name: ClassVar[str] = "transcript"
    text: str
    """What was heard or typed ("" when no speech was heard)."""


@dataclass(frozen=True)
class Sentence:
    name: ClassVar[str] = "sentence"
    index: int
    text: str
    """As written (what is shown and stored)."""
    spoken: str | None = None
    """As a voice should read it (`voiceqna.textnorm.spoken`), when the turn is not spoken by
    the server (`speak=False`: the browser speaks it); None when the server speaks it."""


@dataclass(frozen=True)
class SentenceAudio:
    name: ClassVar[str] = "audio"
    index: int
    audio: bytes
    """One complete WAV: the spoken sentence `index`."""


@dataclass(frozen=True)
class Done:
    name: ClassVar[str] = "done"
    result: TurnResult


@dataclass(frozen=True)
class Failed:
    name: ClassVar[str] = "error"
    error: VoiceQnAError
    """Nothing of the turn was stored."""


TurnEvent = Union[Heard, Sentence, SentenceAudio, Done, Failed]


def result_of(last: TurnEvent | None) -> TurnResult:
    """The result a turn's last event carries, or its error raised."""
    if isinstance(last, Done):
        return last.result
    if isinstance(last, Failed):
        raise last.error
    raise EngineUnavailable("The turn ended without an answer: try again.")


# --- the engines ----------------------------------------------------------------------------


class Engine(Protocol):
    description: str
    """Public (GET /info, the page): the engine and its model, never a path, address or key."""

    def warm_up(self) -> None:
        """Load lazily initialised parts so the first user does not wait for them."""

    def close(self) -> None:
        """Release connections, threads and files (called once, at shutdown)."""


class Recognizer(Engine, Protocol):
    def transcribe(self, samples: np.ndarray) -> Transcript:
        """16 kHz mono float32 in, Korean text out; empty text when there is no speech."""
        ...


class ChatEngine(Engine, Protocol):
    def stream(self, history: Sequence[TextMessage], question: str) -> Iterator[str]:
        """The answer to `question` given the earlier messages (oldest first), in pieces as
        they are written. Raises EngineUnavailable when the engine cannot answer."""
        ...


class Synthesizer(Engine, Protocol):
    def synthesize(self, text: str) -> bytes:
        """Korean text in, one WAV file out (b"" when the engine speaks nothing)."""
        ...


IDEMPOTENCY_TTL_S = 24 * 3600.0
"""How long a store remembers a turn's idempotency key: a repeat within this time is answered
with the stored turn; after it, the key is free again."""


@dataclass(frozen=True)
class TurnKey:
    """A client's idempotency key, stored with its turn in the same atomic write."""

    key: str
    """What the client sent (Idempotency-Key): unique per turn within one conversation."""
    fingerprint: str
    """A hash of what the turn was asked with (the text and role, or the audio bytes): a repeat
    must match it, else the key was reused for another question."""
    audio_error: str = ""
    """The answer's audio_error, handed back to a repeat with the rest of the answer."""


@dataclass(frozen=True)
class StoredTurn:
    """A turn stored under an idempotency key, as a repeat of its request is answered."""

    fingerprint: str
    transcript: str
    """The question as stored (what was heard or typed)."""
    text: str
    """The answer as stored."""
    audio: bytes
    """The answer's audio as stored (b"" when it has none)."""
    audio_error: str = ""


def check_keyed_turn(messages: Sequence[Message]) -> None:
    """A turn stored under a key is exactly a question and its answer (the stores rely on it)."""
    if len(messages) != 2:
        raise ValueError(f"A turn stored under a key is a question and its answer, not {len(messages)} messages.")


class ConversationStore(Engine, Protocol):
    def create(self, messages: Sequence[Message] = ()) -> str:
        """A new conversation holding `messages`; its id."""
        ...

    def messages(self, conversation_id: str) -> list[Message]:
        """All messages, oldest first, audio included; NotFound for an unknown id."""
        ...

    def history(self, conversation_id: str) -> list[TextMessage]:
        """All messages as text only (what the chat engine needs); NotFound for an unknown id."""
        ...

    def append(self, conversation_id: str, messages: Sequence[Message],
               key: TurnKey | None = None) -> StoredTurn | None:
        """Add messages (a whole turn) in one atomic write; NotFound for an unknown id.

        With `key`, `messages` are the question and its answer, and the key is stored with them
        in the same write — unless a turn is already stored under that key (within
        IDEMPOTENCY_TTL_S): then nothing at all is written and that turn is returned. However
        many replicas try at once, one turn is stored per key. None when this turn was stored."""
        ...

    def turn(self, conversation_id: str, key: str) -> StoredTurn | None:
        """The turn stored under `key` within IDEMPOTENCY_TTL_S, or None; NotFound for an unknown id."""
        ...

    def reset(self, conversation_id: str) -> None:
        """Remove every message, keep the conversation; NotFound for an unknown id. Its
        idempotency keys are forgotten with its turns."""
        ...


# --- the service, as the front doors see it ------------------------------------------------


class TurnEvents(Protocol):
    """A turn's events as they happen: `voiceqna.service.TurnStream`, or one read from a remote API."""

    @property
    def finished(self) -> bool:
        """True once the last event (Done or Failed) has been read."""
        ...

    holding: bool
    """True while a turn started with `hold_s` has spoken every sentence and waits to be heard
    before it is stored (always False where turns are not held: over REST)."""

    transcript: Optional[str]
    """What was heard, as soon as it is known ("" if the turn failed first); None until then.
    Hands-free reads it during a pause to decide how long to wait (voiceqna.turn_end)."""

    def next_event(self, timeout: float | None = None) -> TurnEvent | None:
        """The next event; None after the last one, or when `timeout` passes first."""
        ...

    def __iter__(self) -> Iterator[TurnEvent]: ...

    def close(self) -> None:
        """The reader is gone (the turn still finishes and is stored whole)."""
        ...

    def interrupt(self, played: int) -> None:
        """Barge-in: stop the answer; store only its first `played` sentences, marked."""
        ...

    def heard(self) -> None:
        """The answer has been heard to its end (a turn started with `hold_s` is stored now)."""
        ...

    def cancel(self) -> None:
        """Throw the turn away unstored (hands-free started it early and the speech went on).
        Only where the service's `cancellable_turns` is True."""
        ...

    def wait(self) -> None:
        """Until the turn is over (stored or failed), without reading its events (someone else may)."""
        ...

    def result(self) -> TurnResult:
        """Wait for the end; the result, or the turn's error raised."""
        ...


class VoiceChat(Protocol):
    """What both front doors call: ChatService in this process, or RemoteService over HTTP."""

    cancellable_turns: bool
    """Its streamed turns can be thrown away before they are stored (TurnEvents.cancel): hands-free
    may then start a turn early, during a pause."""

    @property
    def info(self) -> EngineInfo: ...

    def create(self, messages: Sequence[Message] = ()) -> str: ...

    def get(self, conversation_id: str) -> list[Message]: ...

    def reset(self, conversation_id: str) -> None: ...

    def send_text(self, conversation_id: str, text: str, role: str = "user", *,
                  idempotency_key: str = "") -> TurnResult: ...

    def send_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "") -> TurnResult: ...

    def transcribe(self, data: bytes) -> str:
        """What is said in a recording, without a conversation."""
        ...

    def stream_text(self, conversation_id: str, text: str, role: str = "user", *,
                    idempotency_key: str = "") -> TurnEvents: ...

    def stream_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "",
                     hold_s: float = 0.0) -> TurnEvents:
        """`hold_s`: store the turn only once it was heard or cut short (see TurnEvents.heard)."""
        ...

    def close(self) -> None: ...
