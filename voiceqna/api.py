"""The REST API for game clients (Unity, curl): the seed's contract over ChatService.

    POST /create            JSON {messages, roles, audios} (all optional) → 201 {"id"}
    GET  /<id>              → 200 [{"message", "role", "audio"}, …]
    POST /send/text/<id>    JSON {message, role} → 200 {"text", "audio", …}
    POST /send/audio/<id>   multipart field `audio`, or the raw audio as the body → 200 {"text", "audio", …}
    POST /reset/<id>        → 200 {"messages": [], "roles": [], "audio": []}
    GET  /info, /health     engine descriptions and limits; liveness

`audio` is base64 everywhere. Errors are `{"error", "status", "type"}` with the status chosen
in one table (ERROR_STATUS); nothing else in this module decides a status.

Under load: spoken turns run a few at a time on their own threads (AudioGate), so text turns,
reads and /health never wait behind the recognizer; when too many wait, more are refused
at once with 503 and Retry-After. Request bodies must arrive within BODY_TIMEOUT_S (else 408).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional
from urllib.parse import unquote_plus

import anyio
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from voiceqna.config import Settings
from voiceqna.errors import (
    AudioTooLarge,
    BadAudio,
    EmptyAudio,
    EngineUnavailable,
    InvalidInput,
    NotFound,
    Overloaded,
    RequestTimeout,
    VoiceQnAError,
    shown,
)
from voiceqna.service import Message, TurnResult

logger = logging.getLogger(__name__)

ERROR_STATUS: dict[type[VoiceQnAError], int] = {
    InvalidInput: 400,
    NotFound: 404,
    EmptyAudio: 400,
    BadAudio: 415,
    AudioTooLarge: 413,
    RequestTimeout: 408,
    EngineUnavailable: 503,
}
"""The one place that maps the project's errors to HTTP statuses (the most specific class wins)."""

ENVELOPE_BYTES = 64 * 1024
"""Room for multipart headers and JSON punctuation on top of MAX_UPLOAD_MB."""

RETRY_AFTER_S = 5
"""Sent with every 503 (an engine down, or the server too busy): when to try again."""

RAW_AUDIO_TYPES = ("audio/", "video/", "application/octet-stream")
"""Content types whose body is taken as the audio file itself (plus Unity's boundary-less multipart)."""


# --- request and response bodies (also the OpenAPI schema) ---


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


def create_api(service: Any, settings: Settings) -> FastAPI:
    """The REST routes over `service` (a ChatService or a RemoteService)."""
    api = FastAPI(
        title="Korean Voice Q&A API",
        version="1.0",
        description="The seed's voice chat contract: create, get, send text or audio, reset.",
        responses={status: {"model": ErrorOut} for status in (400, 404, 408, 413, 415, 422, 503)},
    )
    add_error_handlers(api)
    if settings.api_key:  # added before CORS, so CORS wraps it: preflights pass, and 401s carry CORS headers
        api.add_middleware(RequireKey, key=settings.api_key)
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        api.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    limit, body_timeout = settings.max_upload_bytes, settings.body_timeout_s
    gate = AudioGate(at_once=settings.whisper_workers + 1, waiting=settings.max_waiting_audio_turns)

    @api.get(OPEN_PATH, summary="Liveness (the one path that never needs the key)")
    async def health() -> dict[str, str]:  # async: answers at once, whatever the thread pool is doing
        return {"status": "ok"}

    @api.get("/info", response_model=InfoOut, summary="Engines and limits")
    async def info() -> InfoOut:
        engines = await run_in_threadpool(lambda: service.info)
        return InfoOut(
            recognizer=engines.recognizer, chat=engines.chat, tts=engines.tts, store=engines.store,
            limits=LimitsOut(max_upload_bytes=limit, max_audio_s=settings.max_audio_s,
                             max_message_chars=settings.max_message_chars),
        )

    @api.post("/create", status_code=201, response_model=CreatedOut,
              summary="Create a conversation, optionally with earlier messages",
              openapi_extra=json_body(CreateBody, required=False))
    async def create(request: Request) -> CreatedOut:
        body = parse_json(await read_body(request, limit, body_timeout), CreateBody)
        conversation_id = await run_in_threadpool(service.create, create_messages(body))
        return CreatedOut(id=conversation_id)

    @api.post("/send/text/{conversation_id}", response_model=SendOut,
              summary="Send a text message; get the answer as text and speech",
              openapi_extra=json_body(TextBody, required=True))
    async def send_text(conversation_id: str, request: Request) -> SendOut:
        body = parse_json(await read_body(request, limit, body_timeout), TextBody)
        turn = await run_in_threadpool(service.send_text, conversation_id, body.message, body.role)
        return send_out(turn)

    @api.post("/send/audio/{conversation_id}", response_model=SendOut,
              summary="Send a recording; get the transcript and the answer",
              openapi_extra=AUDIO_BODY)
    async def send_audio(conversation_id: str, request: Request) -> SendOut:
        with gate.admit():
            data = await read_audio(request, limit, body_timeout)
            turn = await gate.run(service.send_audio, conversation_id, data)
        return send_out(turn)

    @api.post("/reset/{conversation_id}", response_model=ResetOut,
              summary="Remove every message; the id stays valid")
    async def reset(conversation_id: str) -> ResetOut:
        await run_in_threadpool(service.reset, conversation_id)
        return ResetOut(messages=[], roles=[], audio=[])

    # Last: /<id> would otherwise swallow the fixed one-word paths above.
    @api.get("/{conversation_id}", response_model=list[MessageOut],
             summary="All messages of a conversation, oldest first")
    async def get(conversation_id: str) -> list[MessageOut]:
        messages = await run_in_threadpool(service.get, conversation_id)
        return [MessageOut(message=m.text, role=m.role, audio=b64(m.audio)) for m in messages]

    return api


class AudioGate:
    """Spoken turns: `at_once` run at a time, on threads of their own (not the pool that text
    turns, reads and /health use); up to `waiting` more queue without holding a thread; any
    more are refused at once (Overloaded: 503 with Retry-After) rather than left hanging."""

    def __init__(self, at_once: int, waiting: int) -> None:
        self.limiter = anyio.CapacityLimiter(at_once)
        self.capacity = at_once + waiting
        self.admitted = 0  # only touched on the event loop: no lock needed

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.admitted >= self.capacity:
            raise Overloaded(
                f"The server is busy: {self.admitted} spoken turns are already being recognised or waiting. "
                f"Try again in {RETRY_AFTER_S} s (Retry-After); nothing was stored."
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)


# --- errors: every failure becomes {"error", "status", "type"} ---


def error_response(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, "type": kind}, status_code=status, headers=headers)


def status_of(exc: VoiceQnAError) -> int:
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def add_error_handlers(api: FastAPI) -> None:
    async def project_error(request: Request, exc: VoiceQnAError) -> JSONResponse:
        status = status_of(exc)
        logger.info("%s %s → %d %s: %s", request.method, request.url.path, status, type(exc).__name__, exc)
        retry = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        return error_response(status, str(exc), type(exc).__name__, retry)

    async def validation_error(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        return error_response(422, describe_validation(exc.errors()), "InvalidInput")

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message, kind = str(exc.detail), "HTTPError"
        if exc.status_code == 404:
            kind = "NotFound"
            message = f"No route {request.method} {shown(request.url.path, 80)}: see /docs for the API."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {shown(request.url.path, 80)}: see /docs for the API."
        return error_response(exc.status_code, message, kind, getattr(exc, "headers", None))

    async def disconnected(request: Request, exc: ClientDisconnect) -> JSONResponse:
        logger.info("%s %s: the client went away before sending its whole body", request.method, request.url.path)
        return error_response(400, "The client disconnected before sending the whole body.", "InvalidInput")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log (Starlette re-raises it to the server), never to the client.
        logger.error("Unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "Internal error: the server logged the details. Try again, "
                                   "or report it if it persists.", "InternalError")

    api.add_exception_handler(VoiceQnAError, project_error)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(ValidationError, validation_error)
    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(ClientDisconnect, disconnected)
    api.add_exception_handler(Exception, unexpected)


def describe_validation(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + ". See /docs for the expected body."


# --- auth ---


OPEN_PATH = "/health"
"""With API_KEY set, the only path that answers without the key (for load balancers' liveness
probes); it says nothing but {"status": "ok"}."""


class RequireKey:
    """ASGI middleware: with API_KEY set, every request but OPEN_PATH needs the key, sent as
    `Authorization: Bearer <key>` or `X-API-Key: <key>` — the routes, /info, /docs, /openapi.json
    and unknown paths alike (so nothing about the API is visible without it)."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or route_path(scope) == OPEN_PATH or self.allowed(dict(scope["headers"])):
            return await self.app(scope, receive, send)
        response = error_response(
            401, "This API needs its key: send 'Authorization: Bearer <API_KEY>' or 'X-API-Key: <API_KEY>'.",
            "Unauthorized", {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)

    def allowed(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"x-api-key", b"")
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if not given and scheme.lower() == b"bearer":
            given = token.strip()
        return bool(given) and secrets.compare_digest(given, self.key)


def route_path(scope: dict) -> str:
    """The path inside this app (without the /api prefix when it is mounted beside the page)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


# --- reading bodies ---


def limited(request: Request, limit: int, timeout_s: float) -> Request:
    """The same request, refusing (AudioTooLarge) as soon as its body passes `limit` bytes, and
    (RequestTimeout) when the whole body has not arrived `timeout_s` after the headers.

    Content-Length is checked first, so an announced 1 GB body is refused before a byte is read;
    a chunked body is counted while it streams in. The wait is asynchronous: a slow client
    holds no thread and keeps no other request waiting.
    """
    def too_large() -> AudioTooLarge:
        return AudioTooLarge(
            f"The request body is over the limit of {limit / 1024 / 1024:.1f} MB: "
            "send a shorter clip (or raise MAX_UPLOAD_MB on the server)."
        )

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + ENVELOPE_BYTES:
        raise too_large()
    received = 0
    deadline = time.monotonic() + timeout_s

    async def receive():
        nonlocal received
        try:
            with anyio.fail_after(max(deadline - time.monotonic(), 0.0)):
                message = await request.receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {timeout_s:g} s ({received} bytes came): "
                "send it in one go, or raise BODY_TIMEOUT_S on the server for very slow links."
            ) from None
        received += len(message.get("body", b""))
        if received > limit + ENVELOPE_BYTES:
            raise too_large()
        return message

    return Request(request.scope, receive)


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    return await limited(request, limit, timeout_s).body()


def parse_json(body: bytes, schema: type[BaseModel]) -> Any:
    """The body as `schema`. An empty body is `{}`; URL-encoded JSON is accepted too, because
    Unity's `UnityWebRequest.Post(url, string)` (the seed's C# samples) escapes the string, and
    so is a UTF-8 byte order mark (Windows tools write one)."""
    try:
        text = body.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InvalidInput("The body is not UTF-8 text: send JSON (Content-Type: application/json).") from None
    data: Any = {}
    if text:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: JSON nested thousands of levels deep
            try:
                data = json.loads(unquote_plus(text))
            except (ValueError, RecursionError):
                raise InvalidInput(
                    f"The body is not valid JSON: send an object like {example_of(schema)}."
                ) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"The body must be a JSON object like {example_of(schema)}.")
    return schema.model_validate(data)


def example_of(schema: type[BaseModel]) -> str:
    if schema is TextBody:
        return '{"message": "안녕하세요", "role": "user"}'
    return '{"messages": ["안녕"], "roles": ["user"], "audios": [""]}'


async def read_audio(request: Request, limit: int, timeout_s: float) -> bytes:
    """The uploaded recording: multipart field `audio`, or the raw body.

    Raw when the Content-Type is audio/*, video/*, application/octet-stream, missing, or
    multipart/form-data without a boundary (what the seed's Unity sample sends).
    """
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    source = limited(request, limit, timeout_s)
    if media == "multipart/form-data" and "boundary=" in content_type.lower():
        return await form_audio(source)
    if media in ("", "multipart/form-data") or media.startswith(RAW_AUDIO_TYPES):
        return await source.body()
    raise BadAudio(
        f"Content-Type {media!r} is not audio: send the recording as the multipart/form-data field "
        "'audio', or as the raw body with Content-Type audio/wav (audio/webm, audio/ogg, audio/mpeg, …)."
    )


async def form_audio(request: Request) -> bytes:
    try:
        form = await request.form(max_files=8, max_fields=32)
    except StarletteHTTPException as exc:  # Starlette's word for a malformed multipart body
        raise InvalidInput(
            f"The multipart body could not be read ({exc.detail}): send the recording as multipart "
            "field 'audio', or as the raw body with Content-Type audio/wav."
        ) from None
    try:
        field = form.get("audio")
        if field is None:
            files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
            field = files[0] if len(files) == 1 else None
        if field is None:
            raise InvalidInput("The form has no 'audio' field: send the recording as multipart field 'audio'.")
        if not isinstance(field, UploadFile):
            raise BadAudio("The 'audio' field is text, not a file: attach the recording as a file.")
        return await field.read()
    finally:
        await form.close()


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


# --- conversions ---


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
                              tts=round(t.tts_ms, 1), store=round(t.store_ms, 1), total=round(t.total_ms, 1)),
        stored=turn.stored,
        audio_error=turn.audio_error,
    )


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
