"""The REST API's bodies (also its OpenAPI schema) and the conversions to and from them."""

from __future__ import annotations

import binascii
import json
from typing import Optional

from pydantic import BaseModel, ConfigDict, StrictStr

from voiceqna.errors import InvalidInput
from voiceqna.ports import Message, TurnResult


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    messages: Optional[list[StrictStr]] = None
    roles: Optional[list[StrictStr]] = None
    """One per message: user, assistant or system."""
    audios: Optional[list[StrictStr]] = None
    """Base64, one per message ("" for none), or omitted. Stored as given and returned unchanged."""


class TextBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message: StrictStr
    role: StrictStr = "user"


class CreatedOut(BaseModel):
    id: str


class MessageOut(BaseModel):
    message: str
    role: str
    audio: str
    """Base64 of the stored audio; "" when the message has none."""


class TimingsOut(BaseModel):
    decode: float
    asr: float
    chat: float
    tts: float
    store: float
    total: float
    first_token: float
    """From the start of the turn to the chat engine's first token."""
    first_audio: float
    """From the start of the turn to the first sentence's audio."""


class SendOut(BaseModel):
    text: str
    """The assistant's answer."""
    audio: str
    """Base64 WAV of the spoken answer; "" when speech synthesis is off or failed."""
    transcript: str
    """What the user said (recognised) or typed; "" when no speech was heard."""
    timings_ms: TimingsOut
    stored: bool
    """False when nothing was heard: the turn was answered but not kept."""
    audio_error: str
    repeated: bool = False
    """True for a retry (the same Idempotency-Key): the first answer again, nothing new stored."""


class TranscriptOut(BaseModel):
    text: str
    """What was said; "" when no speech was heard."""


class ResetOut(BaseModel):
    messages: list[str]
    roles: list[str]
    audio: list[str]


class LimitsOut(BaseModel):
    max_upload_bytes: int
    max_audio_s: float
    max_message_chars: int


class InfoOut(BaseModel):
    recognizer: str
    chat: str
    tts: str
    store: str
    limits: LimitsOut


class ErrorOut(BaseModel):
    error: str
    """What went wrong and what to do about it."""
    status: int
    type: str



class HeardOut(BaseModel):
    text: str


class SentenceOut(BaseModel):
    index: int
    text: str


class AudioOut(BaseModel):
    index: int
    audio: str
    """Base64 of one complete WAV: the spoken sentence `index`."""


def create_messages(body: CreateBody) -> list[Message]:
    messages, roles, audios = body.messages or [], body.roles or [], body.audios or []
    if len(roles) != len(messages):
        raise InvalidInput(
            f"Give one role per message: {len(messages)} messages but {len(roles)} roles."
        )
    if audios and len(audios) != len(messages):
        raise InvalidInput(
            f"Give one audio per message (\"\" for none) or no audios: "
            f"{len(messages)} messages but {len(audios)} audios."
        )
    audios = audios or [""] * len(messages)
    return [
        Message(role=role, text=text, audio=unb64(audio, f"audios[{i}]"))
        for i, (text, role, audio) in enumerate(zip(messages, roles, audios))
    ]


B64_STEP = 3 * 256 * 1024
"""Bytes per base64 step (a multiple of 3). A 15 MB recording is encoded or decoded in ~20 such
steps, and Python threads can take turns between them: one C call over the whole recording
would hold the interpreter lock long enough to stall every other request, /health included."""


def b64(data: bytes) -> str:
    return b64_bytes(data).decode("ascii")


def b64_bytes(data: bytes) -> bytes:
    view = memoryview(data)
    return b"".join(binascii.b2a_base64(view[i:i + B64_STEP], newline=False) for i in range(0, len(view), B64_STEP))


def unb64(text: str, where: str) -> bytes:
    """Standard base64 (the padding may be left out, whitespace is ignored); InvalidInput otherwise."""
    try:
        return _strict_unb64(text)
    except (binascii.Error, ValueError):  # line breaks from some encoders, a missing padding, or not base64
        pass
    compact = "".join(text.split())
    try:
        return _strict_unb64(compact + "=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where} is not valid base64: encode the audio file's bytes with base64.") from None


def _strict_unb64(text: str) -> bytes:
    """Strict base64 decoding (the alphabet, padding only at the end), in B64_STEP steps."""
    if "=" in text[:-2]:
        raise binascii.Error("padding before the end")
    step = B64_STEP // 3 * 4
    return b"".join(binascii.a2b_base64(text[i:i + step], strict_mode=True) for i in range(0, len(text), step))


def send_out(turn: TurnResult) -> SendOut:
    t = turn.timings
    return SendOut(
        text=turn.text,
        audio=b64(turn.audio),
        transcript=turn.transcript,
        timings_ms=TimingsOut(decode=round(t.decode_ms, 1), asr=round(t.asr_ms, 1), chat=round(t.chat_ms, 1),
                              tts=round(t.tts_ms, 1), store=round(t.store_ms, 1), total=round(t.total_ms, 1),
                              first_token=round(t.first_token_ms, 1), first_audio=round(t.first_audio_ms, 1)),
        stored=turn.stored,
        audio_error=turn.audio_error,
        repeated=turn.repeated,
    )


def messages_json(messages: list[Message]) -> bytes:
    """GET /<id>'s body, byte for byte what FastAPI makes of list[MessageOut], for a worker thread.
    Assembled by hand so that the audio (megabytes of base64, which JSON never escapes) is
    encoded in B64_STEP steps and never scanned again as one huge string."""
    parts = [b"["]
    for index, message in enumerate(messages):
        parts += [b"," if index else b"", b'{"message":', _json_string(message.text), b',"role":',
                  _json_string(message.role), b',"audio":"', b64_bytes(message.audio), b'"}']
    parts.append(b"]")
    return b"".join(parts)


def _json_string(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def send_json(turn: TurnResult) -> bytes:
    """A send route's body (the bytes FastAPI would make of SendOut), for a worker thread."""
    return send_out(turn).model_dump_json().encode()


def json_body(schema: type[BaseModel], required: bool) -> dict:
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": schema.model_json_schema()}}}}


_BINARY = {"type": "string", "format": "binary"}
AUDIO_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"audio": _BINARY}, "required": ["audio"]}
            },
            "audio/wav": {"schema": _BINARY},
            "audio/webm": {"schema": _BINARY},
            "application/octet-stream": {"schema": _BINARY},
        },
    }
}
