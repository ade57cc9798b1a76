"""What the page's buttons do: plain functions over the service, no Gradio inside.

Each page action returns a `PageUpdate` (views.py: the conversation as chat bubbles, the answer
to play, a status line, the last turn's timings); a streamed turn (`stream_text`, `stream_audio`)
yields one after each event of the turn: the question, each sentence of the answer as it is
written, each sentence's audio as it is spoken (`Playback`, for the page's audio queue), then the
end. Errors never escape: they become `error`, the conversation shown stays as it was and the
user's input is kept for another try.
Hands-free (`open_hands_free`, `follow_hands_free`): the tab's microphone goes to its session
(handsfree.py); each turn it cuts is shown by `follow_hands_free`, the same streamed turn as
push-to-talk. `interrupt` cuts a streamed turn's answer short where the player stopped it.
The panel's JSON calls are handsfree_calls.py; the public API's, api_calls.py.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import closing, contextmanager
from dataclasses import replace
from typing import Callable, Iterator

from voiceqna import metrics as operator_metrics
from voiceqna.config import HandsFreeOptions
from voiceqna.errors import EngineUnavailable, InvalidInput, VoiceQnAError
from voiceqna.page.audio_files import AudioFiles, read_upload
from voiceqna.page.handsfree import HandsFreeSessions
from voiceqna.page.handsfree_session import text_only
from voiceqna.page.views import (
    ANSWERED,
    ANSWERING,
    HANDS_FREE_ON,
    NOT_HEARD,
    ChatMessage,
    PageUpdate,
    Playback,
    assistant_bubble,
    failed,
    format_timings,
    written_so_far,
)
from voiceqna.ports import (
    Done,
    Failed,
    Heard,
    Message,
    Sentence,
    SentenceAudio,
    TurnEvent,
    TurnEvents,
    TurnResult,
    VoiceChat,
)

logger = logging.getLogger(__name__)


class PageHandlers:
    """The page's actions. `service` is a ChatService or anything with the same methods."""

    def __init__(self, service: VoiceChat, files: AudioFiles | None = None,
                 hands_free: HandsFreeOptions = HandsFreeOptions()) -> None:
        self.service = service
        self.files = files or AudioFiles()
        self.hands_free = HandsFreeSessions(service, hands_free)
        operator_metrics.of(service).watch_handsfree(self.hands_free)  # GET /metrics counts the open sessions
        self.running: dict[str, TurnEvents] = {}
        """Streamed turns being shown, by their Playback.turn: what `interrupt` can cut short."""

    def close(self) -> None:
        """The server is shutting down: every hands-free session ends (their turns are still stored)."""
        self.hands_free.close_all()

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
                    yield PageUpdate(conversation_id, written_so_far(chat, heard, sentences),
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
                yield PageUpdate(conversation_id, written_so_far(chat, heard, sentences),
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

    def _answered(self, conversation_id: str, chat: list[ChatMessage], result: TurnResult) -> PageUpdate:
        """The page after a turn: the question and the answer (with its player) added, timings."""
        answer_audio = self.files.save(result.audio) if result.audio else None
        update = PageUpdate(conversation_id, chat, answer_audio=answer_audio, timings=format_timings(result.timings))
        if not result.stored:
            return replace(update, status=NOT_HEARD)
        chat = list(chat) + [
            {"role": "user", "content": result.transcript},
            assistant_bubble(result.text, answer_audio),
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
                bubbles.append(assistant_bubble(message.text, path))
            elif message.text:
                bubbles.append({"role": "user", "content": message.text})
        return bubbles


def _events(stream: TurnEvents, poll_s: float = 0.1) -> Iterator[TurnEvent | None]:
    """The stream's events, in order, and None once when the turn holds (every sentence is
    spoken and it waits to be heard before it is stored: TurnStream's `hold_s`)."""
    told = False
    while not stream.finished:
        event = stream.next_event(timeout=poll_s)
        if event is not None:
            yield event
        elif not told and stream.holding:
            told = True
            yield None


@contextmanager
def _forgotten(table: dict, key: str) -> Iterator[None]:
    try:
        yield
    finally:
        table.pop(key, None)
