"""What the page shows: its view models (PageUpdate, Playback, Answer), status lines, chat bubbles and the timings table."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voiceqna.errors import VoiceQnAError, kind_of
from voiceqna.ports import Timings

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
    it (voiceqna.spoken), in order, as it is written; None: the server speaks (`clips`)."""


@dataclass(frozen=True)
class PageUpdate:
    conversation_id: str
    chat: list[ChatMessage]
    answer_audio: str | None = None
    """Path of the newest answer's audio (also in its chat bubble); None: the turn has none."""
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


def assistant_bubble(text: str, audio_path: str | None) -> ChatMessage:
    """An answer's bubble, with a player when it has audio."""
    content: list = [text]
    if audio_path:
        content.append({"path": audio_path, "alt_text": "답변 음성 (answer audio)"})
    return {"role": "assistant", "content": content}


def written_so_far(chat: list[ChatMessage], heard: str, sentences: list[str]) -> list[ChatMessage]:
    """The question, then the answer's sentences so far (nothing new when no speech was heard)."""
    if not heard:
        return chat
    bubbles = [*chat, {"role": "user", "content": heard}]
    if sentences:
        bubbles.append({"role": "assistant", "content": " ".join(sentences)})
    return bubbles


def format_timings(timings: Timings) -> str:
    """A Markdown table of the stages of the last turn (stages that did not run show —)."""
    lines = ["| 단계 (stage) | 시간 (time) |", "| --- | ---: |"]
    for name, label in STAGES:
        ms = getattr(timings, name)
        lines.append(f"| {label} | {_duration(ms) if ms > 0 else '—'} |")
    return "\n".join(lines)


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
