"""ChatService: the in-process API that the page and the REST routes both call.

create / get / reset, and a turn — typed or spoken — either whole (`send_text`, `send_audio`)
or as a stream of events (`stream_text`, `stream_audio`): transcript, then each sentence of
the answer and its audio as soon as it is written and spoken, then done (or error).

A turn is: decode → recognise → the chat engine's answer, cut into sentences → speech per
sentence → store. The store write comes last and is one transaction, so an error at any
stage leaves the conversation exactly as it was. Everything that can fail on the request
itself (unknown id, bad input, audio that does not decode, too many turns waiting) fails
when the turn is asked for, before any event.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Generator, Iterator, Optional, Sequence

import numpy as np

from voiceqna import audio
from voiceqna.errors import AudioTooLarge, EngineUnavailable, InvalidInput, Overloaded, VoiceQnAError, shown
from voiceqna.ports import (
    ROLES,
    ChatEngine,
    ConversationStore,
    Done,
    EngineInfo,
    Failed,
    Heard,
    Message,
    Recognizer,
    Sentence,
    SentenceAudio,
    Synthesizer,
    TextMessage,
    Timings,
    TurnEvent,
    TurnResult,
    check_id,
    result_of,
)
from voiceqna.sentences import SentenceSplitter

logger = logging.getLogger(__name__)

NOT_HEARD = "죄송해요, 잘 듣지 못했어요. 다시 한 번 말씀해 주세요."
INTERRUPTED_MARK = " …(중단됨)"
"""Appended to a stored answer that the user cut short: what follows it was never heard."""
LOOKAHEAD = 2
"""Spoken sentences a stream may get ahead of its reader; then it waits (bounded memory)."""


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 25 * 1024 * 1024
    max_audio_s: float = 120.0
    max_message_chars: int = 2000
    recognitions_at_once: int = 3
    """Spoken turns recognised at the same time (the recognizer's workers + 1)."""
    max_waiting_recognitions: int = 64
    """Spoken turns that may wait for the recognizer; more are refused at once (Overloaded)."""


@dataclass
class _Turn:
    """One turn on its way: what the user sent and the clock."""

    conversation_id: str
    started: float
    timings: Timings
    text: str = ""
    """Typed text (role `role`); empty for a spoken turn until it is recognised."""
    role: str = "user"
    samples: Optional[np.ndarray] = None
    ticket: Optional["_Ticket"] = None


class ChatService:
    def __init__(
        self,
        recognizer: Recognizer,
        chat: ChatEngine,
        synthesizer: Synthesizer,
        store: ConversationStore,
        limits: Limits = Limits(),
        speech_text: Callable[[str], str] = str,
    ) -> None:
        """`speech_text` turns a sentence as written into what the synthesizer reads
        (`voiceqna.textnorm.spoken`: numbers, dates and Latin letters read the Korean way)."""
        self.recognizer = recognizer
        self.chat = chat
        self.synthesizer = synthesizer
        self.store = store
        self.limits = limits
        self.speech_text = speech_text
        self.gate = RecognitionGate(limits.recognitions_at_once, limits.max_waiting_recognitions)
        self.locks = ConversationLocks()

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(self.recognizer.description, self.chat.description, self.synthesizer.description,
                          self.store.description)

    def warm_up(self) -> None:
        for engine in self._engines():
            engine.warm_up()

    def close(self) -> None:
        """Close every engine (at shutdown); one that fails to close does not keep the others open."""
        for engine in self._engines():
            try:
                engine.close()
            except Exception:
                logger.exception("Closing %s failed", type(engine).__name__)

    def _engines(self) -> tuple:
        return self.recognizer, self.chat, self.synthesizer, self.store

    # --- conversations ---

    def create(self, messages: Sequence[Message] = ()) -> str:
        return self.store.create([self._checked(m) for m in messages])

    def get(self, conversation_id: str) -> list[Message]:
        return self.store.messages(check_id(conversation_id))

    def reset(self, conversation_id: str) -> None:
        self.store.reset(check_id(conversation_id))

    # --- turns ---

    def send_text(self, conversation_id: str, text: str, role: str = "user") -> TurnResult:
        return result_of(self._run(self._typed(conversation_id, text, role)))

    def send_audio(self, conversation_id: str, data: bytes) -> TurnResult:
        return result_of(self._run(self._spoken(conversation_id, data)))

    def transcribe(self, data: bytes) -> str:
        """What is said in a recording (empty when nothing is), without a conversation: the
        same limits and the same place in the recognizer's queue as a spoken turn."""
        turn = self._spoken("", data)
        try:
            with turn.ticket:
                return self._recognise(turn.samples)
        finally:
            turn.ticket.release()

    def stream_text(self, conversation_id: str, text: str, role: str = "user") -> "TurnStream":
        return TurnStream(self, self._typed(conversation_id, text, role))

    def stream_audio(self, conversation_id: str, data: bytes) -> "TurnStream":
        return TurnStream(self, self._spoken(conversation_id, data))

    def _typed(self, conversation_id: str, text: str, role: str) -> _Turn:
        started = time.perf_counter()
        message = self._checked(Message(role=role, text=text))
        if not _visible(message.text):
            raise InvalidInput("The message is empty: type or say something first.")
        self.store.history(check_id(conversation_id))  # NotFound now, before any event
        return _Turn(conversation_id, started, Timings(), text=message.text, role=message.role)

    def _spoken(self, conversation_id: str, data: bytes) -> _Turn:
        """A spoken turn, decoded and admitted to the recognizer's queue ("" for no conversation)."""
        started = time.perf_counter()
        if len(data) > self.limits.max_upload_bytes:
            raise AudioTooLarge(
                f"The upload is {len(data) / 1e6:.1f} MB, over the limit of "
                f"{self.limits.max_upload_bytes / 1e6:.1f} MB: send a shorter clip."
            )
        if conversation_id:
            self.store.history(check_id(conversation_id))  # NotFound before decoding and recognition
        timings = Timings()
        with _stopwatch(timings, "decode_ms"):
            samples = audio.decode(data, max_seconds=self.limits.max_audio_s)
        return _Turn(conversation_id, started, timings, samples=samples, ticket=self.gate.reserve())

    def _run(self, turn: _Turn, stream: Optional["TurnStream"] = None) -> TurnEvent:
        """Play the turn through, handing each event to `stream` (if any); the last event,
        Done or Failed, is also returned. Never raises."""
        emit = stream.put if stream else (lambda event: None)
        try:
            if turn.samples is not None:
                with turn.ticket:
                    with _stopwatch(turn.timings, "asr_ms"):
                        turn.text = self._recognise(turn.samples)
            emit(Heard(turn.text))
            if not turn.text:
                last: TurnEvent = Done(self._not_heard(turn, emit))
            else:
                last = Done(self._answer(turn, emit, stream))
        except VoiceQnAError as exc:
            last = Failed(exc)
        except Exception as exc:  # a bug or an engine's own failure: logged, never half-stored
            logger.exception("Turn failed")
            last = Failed(EngineUnavailable(f"The turn failed ({type(exc).__name__}): try again."))
        finally:
            if turn.ticket:
                turn.ticket.release()
        emit(last)
        return last

    def _recognise(self, samples: np.ndarray) -> str:
        try:
            return unicodedata.normalize("NFC", self.recognizer.transcribe(samples).text).strip()
        except VoiceQnAError:
            raise
        except Exception as exc:  # the engine's own failure, whatever its type
            logger.exception("Recognizer failed")
            raise EngineUnavailable(f"The speech recognizer failed ({type(exc).__name__}): try again.") from None

    def _answer(self, turn: _Turn, emit: Callable[[TurnEvent], None], stream: Optional["TurnStream"]) -> TurnResult:
        """Answer, speak sentence by sentence, then store the turn whole. The conversation's lock
        is held by the thread that runs the turn, never across a reader's wait."""
        timings = turn.timings
        with self.locks.hold(turn.conversation_id):
            history = self.store.history(turn.conversation_id)
            speech = _Speech(self, turn, emit)
            written: list[str] = []
            sentences = self._sentences(history, turn, written)
            try:
                for sentence in sentences:
                    if stream and stream.interrupted is not None:
                        break
                    speech.say(sentence)
            finally:
                sentences.close()  # an interrupted answer: the engine stops writing
            interrupted = stream.interrupted if stream else None
            if interrupted is None:
                answer = unicodedata.normalize("NFC", "".join(written)).strip()
                if not answer:
                    raise EngineUnavailable("The chat engine returned an empty answer: try again.")
                spoken = speech.audio
            else:
                answer = " ".join(speech.sentences[:interrupted]) + INTERRUPTED_MARK
                spoken = audio.join_wavs(speech.audios[:interrupted])
            user = Message(turn.role, turn.text, audio.encode_wav(turn.samples) if turn.samples is not None else b"")
            with _stopwatch(timings, "store_ms"):
                self.store.append(turn.conversation_id, [user, Message("assistant", answer, spoken)])
        timings.total_ms = _ms_since(turn.started)
        return TurnResult(turn.conversation_id, turn.text, answer, spoken, timings, True, speech.error,
                          interrupted is not None)

    def _sentences(self, history: list[TextMessage], turn: _Turn, written: list[str]) -> Generator[str, None, None]:
        """The chat engine's answer as sentences to speak; each piece it writes is also kept in
        `written`. Times the engine (its first token, and the time spent waiting for it)."""
        splitter = SentenceSplitter()
        timings = turn.timings
        pieces: Iterator[str] = iter(())
        try:
            pieces = iter(self.chat.stream(history, turn.text))
            while True:
                waited = time.perf_counter()
                try:
                    piece = next(pieces)
                except StopIteration:
                    break
                finally:
                    timings.chat_ms += _ms_since(waited)
                if not timings.first_token_ms:
                    timings.first_token_ms = _ms_since(turn.started)
                written.append(piece)
                yield from splitter.feed(piece)
        except VoiceQnAError:
            raise
        except Exception as exc:  # the engine's own failure, whatever its type
            logger.exception("Chat engine failed")
            raise EngineUnavailable(f"The chat engine failed ({type(exc).__name__}): try again.") from None
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
        yield from splitter.flush()

    def _not_heard(self, turn: _Turn, emit: Callable[[TurnEvent], None]) -> TurnResult:
        """No speech: a spoken apology, no chat engine, nothing stored."""
        speech = _Speech(self, turn, emit)
        speech.say(NOT_HEARD)
        turn.timings.total_ms = _ms_since(turn.started)
        return TurnResult(turn.conversation_id, "", NOT_HEARD, speech.audio, turn.timings, False, speech.error)

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


class _Speech:
    """The answer's sentences as they are spoken: events out, audio kept for the stored turn.
    A failed synthesis does not lose the turn: the rest is answered in text only."""

    def __init__(self, service: ChatService, turn: _Turn, emit: Callable[[TurnEvent], None]) -> None:
        self.service, self.turn, self.emit = service, turn, emit
        self.sentences: list[str] = []
        self.audios: list[bytes] = []
        self.error = ""

    def say(self, sentence: str) -> None:
        index = len(self.sentences)
        self.sentences.append(sentence)
        self.emit(Sentence(index, sentence))
        wav = b"" if self.error else self._synthesize(sentence)
        self.audios.append(wav)
        if wav:
            if not self.turn.timings.first_audio_ms:
                self.turn.timings.first_audio_ms = _ms_since(self.turn.started)
            self.emit(SentenceAudio(index, wav))

    @property
    def audio(self) -> bytes:
        return b"" if self.error else audio.join_wavs(self.audios)

    def _synthesize(self, sentence: str) -> bytes:
        started = time.perf_counter()
        try:
            return self.service.synthesizer.synthesize(self.service.speech_text(sentence))
        except Exception as exc:
            logger.warning("Speech synthesis failed, answering in text only: %s", exc)
            # Our own errors are written for the user; anything else shows only its type (details in the log).
            why = str(exc)[:200] if isinstance(exc, VoiceQnAError) else type(exc).__name__
            self.error = f"The answer could not be spoken ({why}); it is kept as text."
            return b""
        finally:
            self.turn.timings.tts_ms += _ms_since(started)


class TurnStream:
    """The events of one turn, in order, as they happen. Iterate it (or call `next_event`).

    The turn runs on a thread of its own from the moment the stream is made: a reader that
    stops reading, or goes away (`close`), does not stop it — the answer is finished and
    stored whole, as a non-streamed turn would be, so a retry or a GET sees it. The thread
    waits for a slow reader only while it is LOOKAHEAD spoken sentences ahead.
    `interrupt(played)` is different: the user cut the answer short (barge-in), so the rest
    is not written, and the stored answer is the first `played` sentences, marked.
    """

    def __init__(self, service: ChatService, turn: _Turn) -> None:
        self.events: queue.Queue[TurnEvent] = queue.Queue()
        self.interrupted: Optional[int] = None
        self._ahead = threading.Condition()
        self._unread_audio = 0
        self._abandoned = False
        self._finished = False
        self.thread = threading.Thread(target=service._run, args=(turn, self), name="turn", daemon=True)
        self.thread.start()

    def put(self, event: TurnEvent) -> None:
        """From the turn's thread: hand one event over, waiting while too far ahead of the reader."""
        with self._ahead:
            if isinstance(event, SentenceAudio):
                self._ahead.wait_for(lambda: self._unread_audio < LOOKAHEAD or self._abandoned
                                     or self.interrupted is not None)
                self._unread_audio += 1
        self.events.put(event)

    def next_event(self, timeout: Optional[float] = None) -> Optional[TurnEvent]:
        """The next event; None after the last one, or when `timeout` passes first."""
        if self._finished:
            return None
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, SentenceAudio):
            with self._ahead:
                self._unread_audio -= 1
                self._ahead.notify_all()
        self._finished = isinstance(event, (Done, Failed))
        return event

    @property
    def finished(self) -> bool:
        return self._finished

    def __iter__(self) -> Iterator[TurnEvent]:
        try:
            while (event := self.next_event()) is not None:
                yield event
        finally:  # a reader that stops iterating early has gone away
            if not self._finished:
                self.close()

    def __enter__(self) -> "TurnStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The reader is gone: the turn goes on to its end without waiting for it."""
        with self._ahead:
            self._abandoned = True
            self._ahead.notify_all()

    def interrupt(self, played: int) -> None:
        """Barge-in: stop the answer; keep (and store) only its first `played` sentences."""
        with self._ahead:
            if self.interrupted is None:
                self.interrupted = max(0, int(played))
            self._ahead.notify_all()

    def result(self) -> TurnResult:
        """Wait for the end; the turn's result, or its error raised."""
        last = None
        for last in self:
            pass
        return result_of(last)


class RecognitionGate:
    """Spoken turns: `at_once` are recognised at a time, up to `waiting` more wait, and any
    more are refused at once (Overloaded: 503 with Retry-After over REST) rather than left
    hanging. A turn reserves its place when it is asked for (after its upload arrived, so a
    slow upload holds nothing) and gives it back as soon as its recognition is over."""

    def __init__(self, at_once: int, waiting: int) -> None:
        self.slots = threading.Semaphore(at_once)
        self.capacity = at_once + waiting
        self.admitted = 0
        self._lock = threading.Lock()

    def reserve(self) -> "_Ticket":
        with self._lock:
            if self.admitted >= self.capacity:
                raise Overloaded(
                    f"The server is busy: {self.admitted} spoken turns are already being recognised or waiting. "
                    "Try again in a few seconds; nothing was stored."
                )
            self.admitted += 1
        return _Ticket(self)


class _Ticket:
    """A reserved place at the gate: `with ticket:` waits for a slot and recognises; `release`
    (idempotent) gives the place back, whether or not the turn got that far."""

    def __init__(self, gate: RecognitionGate) -> None:
        self.gate = gate
        self.released = False

    def __enter__(self) -> None:
        self.gate.slots.acquire()

    def __exit__(self, *exc: object) -> None:
        self.gate.slots.release()
        self.release()

    def release(self) -> None:
        with self.gate._lock:
            if not self.released:
                self.released = True
                self.gate.admitted -= 1


class ConversationLocks:
    """One lock per conversation that has a turn running or waiting: turns on one conversation
    take turns (each sees the answer before it), turns on different ones never wait for each
    other. Locks are made on demand and dropped when unused (memory stays bounded)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # id -> [lock, users]

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(conversation_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[conversation_id]

    def __len__(self) -> int:
        return len(self._locks)


@contextmanager
def _stopwatch(timings: Timings, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        setattr(timings, name, getattr(timings, name) + _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _visible(text: str) -> bool:
    """True when something besides spaces, controls and zero-width marks is left to read."""
    return any(unicodedata.category(c)[0] not in "ZC" for c in text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
