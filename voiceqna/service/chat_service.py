"""ChatService: the in-process API that the page and the REST routes both call.

create / get / reset, and a turn — typed or spoken — either whole (`send_text`, `send_audio`)
or as a stream of events (`stream_text`, `stream_audio`): transcript, then each sentence of
the answer and its audio as soon as it is written and spoken, then done (or error). A streamed
turn asked with `speak=False` is text only (the page's browser voice speaks it): each sentence
comes with its spoken form and no speech is made or stored.

A turn is: decode → recognise → the chat engine's answer, cut into sentences → speech per
sentence → store. The store write comes last and is one transaction, so an error at any
stage leaves the conversation exactly as it was. Everything that can fail on the request
itself (unknown id, bad input, audio that does not decode, too many turns waiting) fails
when the turn is asked for, before any event.

A turn sent with an idempotency key is stored with it; a retry with the same key is answered
from the store (the first answer, nothing new stored, no engine run), even when the retry
races the first request in this process (the conversation's lock) or on another replica (the
store's atomic check when writing).
"""


from __future__ import annotations

import logging
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Generator, Iterator, Optional, Sequence

import numpy as np

from voiceqna import audio
from voiceqna.errors import AudioTooLarge, EngineUnavailable, InvalidInput, Overloaded, VoiceQnAError, shown
from voiceqna.metrics import FrontDoor, Metrics, current_route
from voiceqna.ports import (
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
    StoredTurn,
    Synthesizer,
    TextMessage,
    Timings,
    TurnEvent,
    TurnKey,
    TurnResult,
    check_id,
    result_of,
)
from voiceqna.sentences import SentenceSplitter
from voiceqna.service.admission import ConversationLocks, RecognitionGate, Ticket
from voiceqna.service.checks import checked_key, checked_message, fingerprint, visible
from voiceqna.service.turn_stream import TurnStream

logger = logging.getLogger(__name__)

NOT_HEARD = "죄송해요, 잘 듣지 못했어요. 다시 한 번 말씀해 주세요."
INTERRUPTED_MARK = " …(중단됨)"
"""Appended to a stored answer that the user cut short: what follows it was never heard."""


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
    ticket: Optional[Ticket] = None
    key: Optional[TurnKey] = None
    """The client's idempotency key, with the fingerprint of what it asked."""
    repeat: Optional[StoredTurn] = None
    """The turn already stored under `key`: this request is a retry, answered from the store."""
    kind: str = "text"
    route: FrontDoor = field(default_factory=current_route)
    """The front door that asked for it (GET /metrics), read in the asking thread."""
    speak: bool = True
    """False: no speech is made for the answer (the reader speaks each sentence's `spoken` text
    itself: the page's browser voice); nothing is synthesized and no answer audio is stored."""


@dataclass(frozen=True)
class _Repeat:
    """What a turn that turns out to be a retry returns: the stored turn answers it."""

    stored: StoredTurn
    spoken: bool = False
    """True when this run already streamed its own sentences (found out only when storing)."""


class ChatService:
    cancellable_turns = True
    """Its streamed turns can be thrown away before they are stored (TurnStream.cancel): hands-free
    may start a turn early, during a pause. A remote API's turns cannot (RemoteService)."""

    def __init__(
        self,
        recognizer: Recognizer,
        chat: ChatEngine,
        synthesizer: Synthesizer,
        store: ConversationStore,
        limits: Limits = Limits(),
        speech_text: Callable[[str], str] = str,
        metrics: Optional[Metrics] = None,
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
        self.metrics = metrics or Metrics()
        self.metrics.watch_gate(lambda: self.gate.waiting)

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

    def send_text(self, conversation_id: str, text: str, role: str = "user", *,
                  idempotency_key: str = "") -> TurnResult:
        """A typed turn, whole. With `idempotency_key`, a repeat (same key, same conversation,
        within a day) gets the first answer back and stores nothing (see IDEMPOTENCY_TTL_S)."""
        return result_of(self._run(self._typed(conversation_id, text, role, idempotency_key)))

    def send_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "") -> TurnResult:
        return result_of(self._run(self._spoken(conversation_id, data, idempotency_key)))

    def transcribe(self, data: bytes) -> str:
        """What is said in a recording (empty when nothing is), without a conversation: the
        same limits and the same place in the recognizer's queue as a spoken turn."""
        turn = self._spoken("", data)
        try:
            with turn.ticket:
                return self._recognise(turn.samples)
        finally:
            turn.ticket.release()

    def stream_text(self, conversation_id: str, text: str, role: str = "user", *,
                    idempotency_key: str = "", speak: bool = True) -> TurnStream:
        """A typed turn as events; a repeat streams the stored answer (one sentence, one audio).
        `speak=False`: text only, each Sentence with its `spoken` form (the browser speaks it)."""
        turn = self._typed(conversation_id, text, role, idempotency_key)
        turn.speak = speak
        return TurnStream(lambda stream: self._run(turn, stream))

    def stream_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "",
                     hold_s: float = 0.0, speak: bool = True) -> TurnStream:
        """A spoken turn as events. `hold_s` (hands-free): the turn is stored only once the reader
        says it was heard, cut short or went away (TurnStream), waiting at most that long.
        `speak=False`: as for `stream_text`."""
        turn = self._spoken(conversation_id, data, idempotency_key)
        turn.speak = speak
        return TurnStream(lambda stream: self._run(turn, stream), hold_s)

    def _typed(self, conversation_id: str, text: str, role: str, key: str = "") -> _Turn:
        started = time.perf_counter()
        message = self._checked(Message(role=role, text=text))
        if not visible(message.text):
            raise InvalidInput("The message is empty: type or say something first.")
        turn = _Turn(conversation_id, started, Timings(), text=message.text, role=message.role)
        if key:
            turn.key = TurnKey(checked_key(key), fingerprint(b"text", message.role.encode(), message.text.encode()))
        self._look_up(turn)  # NotFound now, before any event; a repeat is answered from the store
        return turn

    def _spoken(self, conversation_id: str, data: bytes, key: str = "") -> _Turn:
        """A spoken turn, decoded and admitted to the recognizer's queue ("" for no conversation)."""
        started = time.perf_counter()
        if len(data) > self.limits.max_upload_bytes:
            raise AudioTooLarge(
                f"The upload is {len(data) / 1e6:.1f} MB, over the limit of "
                f"{self.limits.max_upload_bytes / 1e6:.1f} MB: send a shorter clip."
            )
        turn = _Turn(conversation_id, started, Timings(), kind="audio")
        if key:
            turn.key = TurnKey(checked_key(key), fingerprint(b"audio", data))
        if conversation_id:
            self._look_up(turn)  # NotFound before decoding and recognition; a repeat skips both
        if turn.repeat is None:
            with _stopwatch(turn.timings, "decode_ms"):
                turn.samples = audio.decode(data, max_seconds=self.limits.max_audio_s)
            try:
                turn.ticket = self.gate.reserve()
            except Overloaded:
                self.metrics.refused.inc()
                raise
        return turn

    def _look_up(self, turn: _Turn) -> None:
        """NotFound for an unknown conversation; for a keyed turn, the turn already stored under
        its key (a retry), if any, goes to `turn.repeat` — refused if it was asked differently."""
        check_id(turn.conversation_id)
        if turn.key is None:
            self.store.history(turn.conversation_id)
            return
        turn.repeat = self._same_request(turn, self.store.turn(turn.conversation_id, turn.key.key))

    @staticmethod
    def _same_request(turn: _Turn, stored: Optional[StoredTurn]) -> Optional[StoredTurn]:
        """`stored`, the turn found under this turn's key, if it was asked the same way; a key
        reused for another question is refused (nothing is stored for this one)."""
        if stored is not None and stored.fingerprint != turn.key.fingerprint:
            raise InvalidInput(
                f"The Idempotency-Key {shown(turn.key.key)} was already used for another question in this "
                "conversation: send a new key with each new question (the same key only to retry the same one)."
            )
        return stored

    def _run(self, turn: _Turn, stream: Optional[TurnStream] = None) -> TurnEvent:
        """Play the turn through, handing each event to `stream` (if any); the last event,
        Done or Failed, is also returned. Never raises."""
        emit = stream.put if stream else (lambda event: None)
        try:
            outcome = self._outcome(turn, emit, stream)
            last: TurnEvent = Done(self._replay(turn, outcome, emit) if isinstance(outcome, _Repeat) else outcome)
        except VoiceQnAError as exc:
            last = Failed(exc)
        except Exception as exc:  # a bug or an engine's own failure: logged, never half-stored
            logger.exception("Turn failed")
            last = Failed(EngineUnavailable(f"The turn failed ({type(exc).__name__}): try again."))
        finally:
            if turn.ticket:
                turn.ticket.release()
        self.metrics.turn_ended(turn.route, turn.kind, stream is not None, last, turn.timings,
                                cancelled=bool(stream and stream.cancelled))
        emit(last)
        return last

    def _outcome(self, turn: _Turn, emit: Callable[[TurnEvent], None],
                 stream: Optional[TurnStream]) -> TurnResult | _Repeat:
        """The question heard (or typed), then the answer; a retry's stored turn instead."""
        if turn.repeat is not None:
            emit(Heard(turn.repeat.transcript))
            return _Repeat(turn.repeat)
        if turn.samples is not None:
            with turn.ticket:
                _check_cancelled(stream)  # thrown away while it waited for the recognizer
                with _stopwatch(turn.timings, "asr_ms"):
                    turn.text = self._recognise(turn.samples)
        _check_cancelled(stream)
        emit(Heard(turn.text))
        return self._answer(turn, emit, stream) if turn.text else self._not_heard(turn, emit)

    def _recognise(self, samples: np.ndarray) -> str:
        try:
            return unicodedata.normalize("NFC", self.recognizer.transcribe(samples).text).strip()
        except VoiceQnAError:
            raise
        except Exception as exc:  # the engine's own failure, whatever its type
            logger.exception("Recognizer failed")
            raise EngineUnavailable(f"The speech recognizer failed ({type(exc).__name__}): try again.") from None

    def _answer(self, turn: _Turn, emit: Callable[[TurnEvent], None],
                stream: Optional[TurnStream]) -> TurnResult | _Repeat:
        """Answer, speak sentence by sentence, then store the turn whole. The conversation's lock
        is held by the thread that runs the turn, from reading the history to storing, never by
        a reader. That thread may wait for its reader meanwhile: a slow one (the look-ahead), and
        for a held hands-free turn (`hold_s`) until the page says the answer was heard or cut
        short (at most `hold_s`); a reader that goes away (`close`) ends both waits at once, so
        only this conversation's next turns wait, and only for a reader that is still there."""
        timings = turn.timings
        with self.locks.hold(turn.conversation_id):
            if turn.key is not None and (earlier := self._same_request(turn, self.store.turn(turn.conversation_id,
                                                                                              turn.key.key))):
                return _Repeat(earlier)  # a retry that ran alongside the first one, which has just been stored
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
            if stream and stream.interrupted is None:
                stream.wait_until_heard()  # hands-free: a barge-in while it plays still counts
            _check_cancelled(stream)
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
            key = replace(turn.key, audio_error=speech.error) if turn.key else None
            with _stopwatch(timings, "store_ms"):
                earlier = self.store.append(turn.conversation_id, [user, Message("assistant", answer, spoken)], key)
            if self._same_request(turn, earlier):  # another replica stored a retry of this request first
                return _Repeat(earlier, spoken=True)  # its answer stands; nothing of this run is stored
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

    def _replay(self, turn: _Turn, repeat: _Repeat, emit: Callable[[TurnEvent], None]) -> TurnResult:
        """A retried request: the stored answer's events (one sentence, its audio), nothing stored."""
        stored = repeat.stored
        if not repeat.spoken:
            emit(Sentence(0, stored.text, None if turn.speak else self.speech_text(stored.text)))
            if stored.audio and turn.speak:
                emit(SentenceAudio(0, stored.audio))
        turn.timings.total_ms = _ms_since(turn.started)
        return TurnResult(turn.conversation_id, stored.transcript, stored.text, stored.audio, turn.timings, True,
                          stored.audio_error, repeated=True)

    def _not_heard(self, turn: _Turn, emit: Callable[[TurnEvent], None]) -> TurnResult:
        """No speech: a spoken apology, no chat engine, nothing stored."""
        speech = _Speech(self, turn, emit)
        speech.say(NOT_HEARD)
        turn.timings.total_ms = _ms_since(turn.started)
        return TurnResult(turn.conversation_id, "", NOT_HEARD, speech.audio, turn.timings, False, speech.error)

    def _checked(self, message: Message) -> Message:
        return checked_message(message, self.limits.max_message_chars)


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
        if not self.turn.speak:  # the reader speaks it: no synthesis, no audio kept
            self.emit(Sentence(index, sentence, self.service.speech_text(sentence)))
            self.audios.append(b"")
            return
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


def _check_cancelled(stream: Optional[TurnStream]) -> None:
    if stream is not None and stream.cancelled:
        raise InvalidInput("The turn was cancelled before it was stored (the speaker went on).")


@contextmanager
def _stopwatch(timings: Timings, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        setattr(timings, name, getattr(timings, name) + _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
