"""The REST API's bodies (also its OpenAPI schema) and the conversions to and from them."""

from __future__ import annotations

import base64
import binascii
from typing import Optional

from pydantic import BaseModel, ConfigDict, StrictStr, TypeAdapter

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


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, where: str) -> bytes:
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where} is not valid base64: encode the audio file's bytes with base64.") from None


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


MESSAGES = TypeAdapter(list[MessageOut])


def messages_json(messages: list[Message]) -> bytes:
    """GET /<id>'s body (the bytes FastAPI would make of list[MessageOut]): base64 and JSON of a
    long conversation take a while, so the routes call this on a worker thread."""
    return MESSAGES.dump_json([MessageOut(message=m.text, role=m.role, audio=b64(m.audio)) for m in messages])


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
