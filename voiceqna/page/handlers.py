"""What the page's buttons and its public API do: plain functions over the service, no Gradio inside.

Each page handler returns a `PageUpdate` (the conversation as chat bubbles, the answer to play,
a status line, the last turn's timings); a streamed turn (`stream_text`, `stream_audio`) yields
one after each event of the turn: the question, each sentence of the answer as it is written,
each sentence's audio as it is spoken (`Playback`, for the page's audio queue), then the end.
Errors never escape: they become `error`, the conversation shown stays as it was and the
user's input is kept for another try.
Hands-free (`hands_free_*`, `follow_hands_free`): the tab's microphone goes to its session
(handsfree.py); each turn it cuts is shown by `follow_hands_free`, the same streamed turn as
push-to-talk. `interrupt` cuts a streamed turn's answer short where the player stopped it.
The public API's handlers (`api_*`) return plain values (`Answer`, text) and raise the
project's errors, which public_api.py turns into the API's error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from voiceqna.config import HandsFreeOptions
from voiceqna.endpointing import State
from voiceqna.errors import BadAudio, EmptyAudio, EngineUnavailable, InvalidInput, VoiceQnAError, kind_of
from voiceqna.page.handsfree import GONE, HandsFreeSessions, Reply, pcm16_samples
from voiceqna.ports import (Done, Failed, Heard, Message, Sentence, SentenceAudio, Timings, TurnEvent, TurnEvents,
                             TurnResult)

logger = logging.getLogger(__name__)

ChatMessage = dict
"""One bubble in Gradio's messages format: {"role": "user"|"assistant", "content": [...]}."""

STAGES = (
    ("decode_ms", "오디오 변환 (decode)"),
    ("asr_ms", "음성 인식 (Whisper)"),
    ("chat_ms", "답변 생성 (chat)"),
    ("tts_ms", "음성 합성 (TTS)"),
    ("store_ms", "저장 (store)"),
    ("total_ms", "전체 (total)"),
    ("first_token_ms", "첫 토큰까지 (to first token)"),
    ("first_audio_ms", "첫 음성까지 (to first audio)"),
)
NO_TURN_YET = "아직 처리한 질문이 없어요 (no turn yet)."
ANSWERING = "💬 답하는 중… (answering)"
ANSWERED = "✅ 답변했어요 (answered)."
NOT_HEARD = "🔇 말소리가 들리지 않았어요 (no speech heard): 마이크에 가까이 대고 다시 말씀해 주세요."
HANDS_FREE_ON = "🎧 핸즈프리: 말씀하시면 듣고 답해요 (hands-free: just speak)."


@dataclass(frozen=True)
class Playback:
    """What the page's audio queue plays: the spoken sentences of one turn's answer, in order."""

    turn: str
    """New for each turn: the queue drops what it still plays of an earlier one."""
    clips: tuple[str, ...] = ()
    """Paths of the sentences' WAV files, in order, as they are spoken."""
    final: bool = False
    """The turn is over: no more clips will come."""
    stopped: bool = False
    """Stop playing at once (the turn failed, so its answer does not exist)."""
    spoken: tuple[str, ...] | None = None
    """A turn the browser speaks (asked with speak=False): each sentence as a voice should read
    it (voiceqna.textnorm.spoken), in order, as it is written; None: the server speaks (`clips`)."""


@dataclass(frozen=True)
class PageUpdate:
    conversation_id: str
    chat: list[ChatMessage]
    answer_audio: str | None = None
    """Path of the newest answer's audio, played once as it arrives; None: nothing to play."""
    status: str = ""
    """One line for the user: what happened, or what went wrong and what to do."""
    timings: str | None = None
    """The last turn's stages as a Markdown table; None leaves the table as it is."""
    error: str = ""
    """Set when the action failed: the page shows it as a warning and keeps the user's input."""
    playback: Playback | None = None
    """A streamed turn's sentences to play; None leaves the audio queue as it is."""


@dataclass(frozen=True)
class Answer:
    """One turn as the page's public API returns it."""

    transcript: str
    """What was heard (or typed); empty when no speech was heard (then nothing is stored)."""
    text: str
    """The answer, as stored (for silence: the spoken apology, not stored)."""
    audio: str | None
    """Path of the answer's WAV; None when speech synthesis is off or failed."""
    conversation_id: str


class AudioFiles:
    """Answer audio as files for Gradio to serve: content-addressed, written once.

    Gradio copies each file it is given into its own cache (which `delete_cache` empties), so
    a file here is needed only for a moment; files unused for `keep_s` are removed. Without a
    `folder`, a new private one (mkdtemp: mode 0700, a random name) is made for this object and
    removed with it, so no other local user can plant files under the names the page serves.
    """

    def __init__(self, folder: Path | None = None, keep_s: float = 3600.0) -> None:
        if folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="voiceqna-page-audio-"))
            weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        else:
            self.folder = Path(folder)
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_s = keep_s

    def save(self, data: bytes) -> str | None:
        """The path of a file holding `data`; None when the bytes are not audio a browser plays."""
        suffix = audio_suffix(data)
        if suffix is None:
            return None
        self._prune()
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if path.is_file():
            os.utime(path)
        else:
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)
        return str(path)

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_s
        for old in self.folder.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another process pruned it first
                pass


def audio_suffix(data: bytes) -> str | None:
    """The file extension a browser needs to play these bytes; None for bytes that are not audio."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return ".mp3"
    if data[:4] == b"OggS":
        return ".ogg"
    if data[:4] == b"fLaC":
        return ".flac"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if data[4:8] == b"ftyp":
        return ".m4a"
    return None


class PageHandlers:
    """The page's actions. `service` is a ChatService or anything with the same methods."""

    def __init__(self, service, files: AudioFiles | None = None,
                 hands_free: HandsFreeOptions = HandsFreeOptions()) -> None:
        self.service = service
        self.files = files or AudioFiles()
        self.hands_free = HandsFreeSessions(service, hands_free)
        self.running: dict[str, TurnEvents] = {}
        """Streamed turns being shown, by their Playback.turn: what `interrupt` can cut short."""

    def engine_info(self) -> str:
        try:
            info = self.service.info
        except Exception as exc:  # a remote API that is down must not break the page
            logger.warning("Engine info unavailable: %s", exc)
            why = str(exc) if isinstance(exc, VoiceQnAError) else type(exc).__name__  # never an address
            return f"엔진 정보를 가져오지 못했어요 (engine info unavailable): {why}"
        rows = (
            ("음성 인식 (speech recognition)", info.recognizer),
            ("대화 엔진 (chat)", info.chat),
            ("음성 합성 (speech synthesis)", info.tts),
            ("저장소 (store)", info.store),
        )
        return "\n".join(f"- **{label}**: {value}" for label, value in rows)

    def new_conversation(self) -> PageUpdate:
        try:
            conversation_id = self.service.create()
        except Exception as exc:
            return failed("", [], exc)
        return PageUpdate(conversation_id, [], status=f"새 대화를 시작했어요 (new conversation): `{conversation_id}`")

    def open_conversation(self, conversation_id: str, chat: list[ChatMessage], current_id: str) -> PageUpdate:
        conversation_id = (conversation_id or "").strip().lower()
        try:
            messages = self.service.get(conversation_id)
        except Exception as exc:
            return failed(current_id, chat, exc)
        return PageUpdate(
            conversation_id,
            self.chat_messages(messages),
            status=f"대화를 열었어요 (opened): 메시지 {len(messages)}개",
        )

    def ask_text(self, conversation_id: str, chat: list[ChatMessage], text: str) -> PageUpdate:
        if not (text or "").strip():
            return failed(conversation_id, chat, InvalidInput("The message is empty: type a question first."))
        return self._turn(conversation_id, chat, lambda cid: self.service.send_text(cid, text))

    def ask_audio(self, conversation_id: str, chat: list[ChatMessage], audio_path: str | None) -> PageUpdate:
        try:
            data = read_upload(audio_path)
        except VoiceQnAError as exc:
            return failed(conversation_id, chat, exc)
        return self._turn(conversation_id, chat, lambda cid: self.service.send_audio(cid, data))

    # --- streamed turns: the answer is shown and heard sentence by sentence as it is written ---

    def stream_text(self, conversation_id: str, chat: list[ChatMessage], text: str, speak: bool = True
                    ) -> Iterator[PageUpdate]:
        """`speak=False`: text only, the browser speaks the answer (Playback.spoken)."""
        if not (text or "").strip():
            yield failed(conversation_id, chat, InvalidInput("The message is empty: type a question first."))
            return
        yield from self._streamed(conversation_id, chat,
                                  lambda cid: self.service.stream_text(cid, text, **text_only(speak)))

    def stream_audio(self, conversation_id: str, chat: list[ChatMessage], audio_path: str | None,
                     speak: bool = True) -> Iterator[PageUpdate]:
        try:
            data = read_upload(audio_path)
        except VoiceQnAError as exc:
            yield failed(conversation_id, chat, exc)
            return
        yield from self._streamed(conversation_id, chat,
                                  lambda cid: self.service.stream_audio(cid, data, **text_only(speak)))

    def _streamed(self, conversation_id: str, chat: list[ChatMessage],
                  start: Callable[[str], TurnEvents], turn_id: str = "") -> Iterator[PageUpdate]:
        """One update per event. If the page goes away mid-answer (the generator is closed), the
        stream is closed and the service finishes the turn and stores it whole. `turn_id` names
        the turn's Playback (a new one when empty)."""
        try:
            if not conversation_id:
                conversation_id = self.service.create()
            stream = start(conversation_id)
        except Exception as exc:  # refused before it started: unknown id, bad audio, too long, busy
            yield failed(conversation_id, chat, exc)
            return
        playback = Playback(turn_id or uuid.uuid4().hex)
        heard, sentences = "", []
        self.running[playback.turn] = stream
        with closing(stream), _forgotten(self.running, playback.turn):
            for event in _events(stream):
                if event is None:  # every sentence is spoken; the turn waits until it is heard
                    playback = replace(playback, final=True)
                    yield PageUpdate(conversation_id, self._written_so_far(chat, heard, sentences),
                                     status=ANSWERING, playback=playback)
                    continue
                if isinstance(event, Done):
                    yield replace(self._answered(conversation_id, chat, event.result),
                                  playback=replace(playback, final=True))
                    return
                if isinstance(event, Failed):
                    yield replace(failed(conversation_id, chat, event.error),
                                  playback=replace(playback, final=True, stopped=True))
                    return
                if isinstance(event, Heard):
                    heard = event.text
                elif isinstance(event, Sentence):
                    sentences.append(event.text)
                    if event.spoken is not None:  # the browser speaks this turn
                        playback = replace(playback, spoken=(*(playback.spoken or ()), event.spoken))
                elif isinstance(event, SentenceAudio):
                    path = self.files.save(event.audio)
                    if path:
                        playback = replace(playback, clips=(*playback.clips, path))
                yield PageUpdate(conversation_id, self._written_so_far(chat, heard, sentences),
                                 status=ANSWERING, playback=playback)
        yield failed(conversation_id, chat, EngineUnavailable("The answer stopped before it was complete: try again."))

    def interrupt(self, turn_id: str, played: int) -> bool:
        """Barge-in: the player stopped this turn's answer after `played` sentences had started;
        the rest is not written, and the stored answer is those sentences, marked. False when the
        turn is not running (any more): then it has been stored whole already."""
        stream = self.running.get(str(turn_id))
        if stream is None:
            return False
        stream.interrupt(max(0, int(played)))
        return True

    def heard(self, turn_id: str) -> bool:
        """The player has played this turn's answer to its end: a held turn is stored now."""
        stream = self.running.get(str(turn_id))
        if stream is None:
            return False
        stream.heard()
        return True

    # --- hands-free: the tab's microphone, its turns shown as streamed turns ---

    def open_hands_free(self, conversation_id: str, chat: list[ChatMessage], old_token: str = "",
                        tab: str = "") -> tuple[PageUpdate, str]:
        """Switch hands-free on for this tab: a new session (the old one, if any, ends) listening
        for the tab's conversation (a new one when it has none). Its token; "" when it failed.
        `tab`: the tab's Gradio session, whose end (`hands_free_tab_gone`) ends the session."""
        if old_token:
            self.hands_free.close(old_token)
        try:
            if not conversation_id:
                conversation_id = self.service.create()
            token = self.hands_free.open(conversation_id, tab)
        except Exception as exc:  # the store, or the VAD model (faster-whisper) missing
            if not isinstance(exc, VoiceQnAError):
                logger.exception("Hands-free could not start")
                exc = EngineUnavailable(f"Hands-free could not start ({exc}).")
            return failed(conversation_id, chat, exc), ""
        return PageUpdate(conversation_id, chat, status=HANDS_FREE_ON), token

    def hands_free_tab_gone(self, tab: str) -> int:
        """Gradio saw the tab close (its heartbeat stopped): end its sessions; how many."""
        return self.hands_free.close_tab(tab)

    def hands_free_conversation(self, token: str, conversation_id: str) -> None:
        """The tab switched conversation (New, Open, or a typed turn made one): follow it."""
        self.hands_free.set_conversation(token, conversation_id)

    def follow_hands_free(self, token: str, turn_id: str, chat: list[ChatMessage],
                          conversation_id: str = "") -> Iterator[PageUpdate]:
        """A turn the tab's microphone gave: the same updates as a push-to-talk turn, once the
        turns before it are over. Its Playback is named `turn_id`."""
        try:
            turn = self.hands_free.claim(token, turn_id)
        except VoiceQnAError as exc:
            yield failed(conversation_id, chat, exc)
            return
        try:
            if turn.error is not None:
                yield failed(turn.conversation_id, chat, turn.error)
                return
            yield from self._streamed(turn.conversation_id, chat, lambda cid: turn.stream, turn.id)
        finally:
            self.hands_free.finished(token, turn_id)

    # JSON in, JSON out: what the panel's script calls (Gradio's component server, behind the page's login).

    def hands_free_feed(self, request: dict) -> dict:
        """{token, audio: base64 16 kHz 16-bit mono PCM, playing, barge_in} -> Reply.as_json()."""
        try:
            token = _field(request, "token", str)
            samples = pcm16_samples(_base64(_field(request, "audio", str)))
            playing, barge_in = bool(request.get("playing")), bool(request.get("barge_in"))
        except InvalidInput as exc:
            return Reply(State.LISTENING.value, error=str(exc)).as_json()
        speak = request.get("speak") is not False  # false: the browser speaks this tab's answers
        return self.hands_free.feed(token, samples, playing, barge_in, speak).as_json()

    def hands_free_interrupt(self, request: dict) -> dict:
        """{token, turn, played} -> {interrupted}: the answer playing in this tab was cut short."""
        try:
            token, turn, played = _field(request, "token", str), _field(request, "turn", str), request.get("played")
            if not isinstance(played, int) or isinstance(played, bool):
                raise InvalidInput("played must be a whole number of sentences.")
        except InvalidInput as exc:
            return {"interrupted": False, "error": str(exc)}
        if token not in self.hands_free:
            return {"interrupted": False, "error": GONE}
        return {"interrupted": self.interrupt(turn, played), "error": ""}

    def hands_free_heard(self, request: dict) -> dict:
        """{token, turn} -> {heard}: the answer of this tab's turn has been played to its end."""
        try:
            token, turn = _field(request, "token", str), _field(request, "turn", str)
        except InvalidInput as exc:
            return {"heard": False, "error": str(exc)}
        if token not in self.hands_free:
            return {"heard": False, "error": GONE}
        return {"heard": self.heard(turn), "error": ""}

    def hands_free_close(self, request: dict) -> dict:
        """{token} -> {closed}: hands-free switched off, or the tab is closing."""
        try:
            return {"closed": self.hands_free.close(_field(request, "token", str))}
        except InvalidInput:
            return {"closed": False}

    @staticmethod
    def _written_so_far(chat: list[ChatMessage], heard: str, sentences: list[str]) -> list[ChatMessage]:
        """The question, then the answer's sentences so far (nothing new when no speech was heard)."""
        if not heard:
            return chat
        bubbles = [*chat, {"role": "user", "content": heard}]
        if sentences:
            bubbles.append({"role": "assistant", "content": " ".join(sentences)})
        return bubbles

    # --- the public API (gradio_client, "Use via API"): plain values in and out ---

    def api_ask_text(self, text: str, conversation_id: str = "") -> Answer:
        if not (text or "").strip():
            raise InvalidInput("The message is empty: send the question's text.")
        return self._api_turn(conversation_id, lambda cid: self.service.send_text(cid, text))

    def api_ask_audio(self, audio_path: str | None, conversation_id: str = "") -> Answer:
        data = read_upload(audio_path)
        return self._api_turn(conversation_id, lambda cid: self.service.send_audio(cid, data))

    def api_transcribe(self, audio_path: str | None) -> str:
        return self.service.transcribe(read_upload(audio_path))

    def _api_turn(self, conversation_id: str, send: Callable[[str], TurnResult]) -> Answer:
        conversation_id = (conversation_id or "").strip().lower() or self.service.create()
        result: TurnResult = send(conversation_id)
        audio = self.files.save(result.audio) if result.audio else None
        return Answer(result.transcript, result.text, audio, conversation_id)

    def _turn(self, conversation_id: str, chat: list[ChatMessage], send: Callable[[str], TurnResult]) -> PageUpdate:
        try:
            if not conversation_id:
                conversation_id = self.service.create()
            result: TurnResult = send(conversation_id)
        except Exception as exc:
            return failed(conversation_id, chat, exc)
        return self._answered(conversation_id, chat, result)

    def _answered(self, conversation_id: str, chat: list[ChatMessage], result: TurnResult) -> PageUpdate:
        """The page after a turn: the question and the answer (with its player) added, timings."""
        answer_audio = self.files.save(result.audio) if result.audio else None
        update = PageUpdate(conversation_id, chat, answer_audio=answer_audio, timings=format_timings(result.timings))
        if not result.stored:
            return replace(update, status=NOT_HEARD)
        chat = list(chat) + [
            {"role": "user", "content": result.transcript},
            self._assistant_message(result.text, answer_audio),
        ]
        status = ANSWERED
        if result.audio_error:
            status = f"⚠️ 답변을 소리로 만들지 못했어요 (speech failed): {result.audio_error}"
        return replace(update, chat=chat, status=status)

    def chat_messages(self, messages: list[Message]) -> list[ChatMessage]:
        """Stored messages as bubbles; answers carry a player when they have audio."""
        bubbles = []
        for message in messages:
            if message.role == "assistant":
                path = self.files.save(message.audio) if message.audio else None
                bubbles.append(self._assistant_message(message.text, path))
            elif message.text:
                bubbles.append({"role": "user", "content": message.text})
        return bubbles

    @staticmethod
    def _assistant_message(text: str, audio_path: str | None) -> ChatMessage:
        content: list = [text]
        if audio_path:
            content.append({"path": audio_path, "alt_text": "답변 음성 (answer audio)"})
        return {"role": "assistant", "content": content}


def text_only(speak: bool) -> dict:
    """The keyword that asks the service for a turn without speech (none: as before)."""
    return {} if speak else {"speak": False}


def _events(stream: TurnEvents, poll_s: float = 0.1) -> Iterator[TurnEvent | None]:
    """The stream's events, in order, and None once when the turn holds (every sentence is
    spoken and it waits to be heard before it is stored: TurnStream's `hold_s`)."""
    told = False
    while not stream.finished:
        event = stream.next_event(timeout=poll_s)
        if event is not None:
            yield event
        elif not told and getattr(stream, "holding", False):
            told = True
            yield None


@contextmanager
def _forgotten(table: dict, key: str) -> Iterator[None]:
    try:
        yield
    finally:
        table.pop(key, None)


def _field(request: object, name: str, kind: type):
    value = request.get(name) if isinstance(request, dict) else None
    if not isinstance(value, kind):
        raise InvalidInput(f"The request needs {name!r} ({kind.__name__}).")
    return value


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("The audio must be base64 text.") from None


def read_upload(audio_path: str | None) -> bytes:
    """The bytes of a recording or upload; EmptyAudio / BadAudio say what to do."""
    if not audio_path:
        raise EmptyAudio("Nothing was recorded: press record, speak, then stop (or send an audio file).")
    try:
        return Path(audio_path).read_bytes()
    except OSError as exc:
        raise BadAudio(f"The upload could not be read ({exc}): try again.") from None


def failed(conversation_id: str, chat: list[ChatMessage], exc: Exception) -> PageUpdate:
    """The page as it was, with the error on the status line and as a warning."""
    message = describe_error(exc)
    return PageUpdate(conversation_id, chat, status=message, error=message)


def describe_error(exc: Exception) -> str:
    """One line for the user: a Korean title, then the project's message (which says the fix)."""
    if isinstance(exc, VoiceQnAError):
        return f"⚠️ {kind_of(exc).title}: {exc}"
    logger.exception("Unexpected error in a page action", exc_info=exc)
    return f"⚠️ 예상하지 못한 오류 (unexpected error, {type(exc).__name__}): 잠시 후 다시 시도해 주세요."


def format_timings(timings: Timings) -> str:
    """A Markdown table of the stages of the last turn (stages that did not run show —)."""
    lines = ["| 단계 (stage) | 시간 (time) |", "| --- | ---: |"]
    for name, label in STAGES:
        ms = getattr(timings, name)
        lines.append(f"| {label} | {_duration(ms) if ms > 0 else '—'} |")
    return "\n".join(lines)


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
