"""The REST routes for game clients (Unity, curl): the seed's contract over the service, and
the streamed turns beside it.

    POST /create                  JSON {messages, roles, audios} (all optional) → 201 {"id"}
    GET  /<id>                    → 200 [{"message", "role", "audio"}, …]
    POST /send/text/<id>          JSON {message, role} → 200 {"text", "audio", …}
    POST /send/audio/<id>         multipart field `audio`, or the raw audio as the body → 200 {"text", "audio", …}
    POST /send/text/<id>/stream   the same bodies → text/event-stream: transcript, sentence, audio, …, done | error
    POST /send/audio/<id>/stream
    POST /reset/<id>              → 200 {"messages": [], "roles": [], "audio": []}
    POST /transcribe              a recording (as for /send/audio) → 200 {"text"}: speech to text only
    GET  /info, /health           engine descriptions and limits; liveness
    GET  /metrics                 counters for Prometheus (voiceqna.metrics), with the key as any route

`audio` is base64 everywhere. Turns run on threads of the service (voiceqna.service); a route
only waits for their events, so reads and /health never queue behind a turn.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, Callable, TypeVar

import anyio

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response, StreamingResponse

from voiceqna import metrics as operator_metrics
from voiceqna.api.auth import OPEN_PATH, RequireKey
from voiceqna.api.bodies import parse_json, read_audio, read_body
from voiceqna.api.errors import add_error_handlers
from voiceqna.api.schemas import (
    AUDIO_BODY,
    CreateBody,
    CreatedOut,
    ErrorOut,
    InfoOut,
    LimitsOut,
    MessageOut,
    ResetOut,
    SendOut,
    TextBody,
    TranscriptOut,
    create_messages,
    json_body,
    messages_json,
    send_json,
)
from voiceqna.api.stream import EventReader
from voiceqna.config import Settings
from voiceqna.ports import TurnEvents, VoiceChat, result_of

STREAM_DOC = (
    "Server-Sent Events, in order: `transcript` {text}, then per sentence of the answer `sentence` "
    "{index, text} and `audio` {index, audio: base64 WAV}, then `done` (exactly the JSON of the "
    "non-streaming route) or `error` {error, status, type} (nothing stored). A client that goes away "
    "does not cancel the turn: it is finished and stored whole."
)
KEY_HEADER = "Idempotency-Key"
KEY_DOC = (f"Send routes take an optional `{KEY_HEADER}` header (1–255 visible ASCII characters, e.g. a "
           "UUID made once per question): a retry with the same key within 24 h gets the first answer back "
           "(`repeated: true`) and stores nothing new, whichever replica it reaches.")


KEY_PARAMETER = {"parameters": [{"name": KEY_HEADER, "in": "header", "required": False, "description": KEY_DOC,
                                 "schema": {"type": "string", "maxLength": 255}}]}


def idempotency_key(request: Request) -> str:
    """The request's Idempotency-Key header ("" when absent); the service checks its form."""
    return request.headers.get(KEY_HEADER, "")


SSE_RESPONSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}, "description": STREAM_DOC}}


T = TypeVar("T")
CONVERSIONS_AT_ONCE = 1
"""Request and response bodies parsed or encoded at the same time (JSON, base64). They run on a
worker thread, never on the event loop; and one at a time, because they need Python's
interpreter lock: several at once only make the event loop (and /health) queue for the lock
behind them all, for no more throughput (the lock lets one run at a time anyway). Measured by
benchmarks/health_under_uploads.py: with 2 at a time /health's p50 rose above the baseline's."""


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def create_api(service: VoiceChat, settings: Settings) -> FastAPI:
    """The REST routes over `service` (a ChatService, or a RemoteService in remote mode).
    The service's engines are closed when the app shuts down."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(service.close)

    api = FastAPI(
        title="Korean Voice Q&A API",
        version="1.1",
        description="The seed's voice chat contract (create, get, send text or audio, reset), and "
                    "streamed turns that speak each sentence as soon as it is written. " + KEY_DOC,
        responses={status: {"model": ErrorOut} for status in (400, 404, 408, 413, 415, 422, 503)},
        lifespan=lifespan,
    )
    metrics = operator_metrics.of(service)
    add_error_handlers(api, metrics.error)
    api.add_middleware(operator_metrics.RestRoute)
    if settings.api_key:  # added before CORS, so CORS wraps it: preflights pass, and 401s carry CORS headers
        api.add_middleware(RequireKey, key=settings.api_key)
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        api.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", KEY_HEADER],
        )
    limit, body_timeout = settings.max_upload_bytes, settings.body_timeout_s
    reader = EventReader()
    conversions = anyio.CapacityLimiter(CONVERSIONS_AT_ONCE)

    async def converting(function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on a worker thread, at most CONVERSIONS_AT_ONCE at a time."""
        return await anyio.to_thread.run_sync(function, *args, limiter=conversions)

    async def text_turn(conversation_id: str, request: Request) -> TurnEvents:
        raw, key = await read_body(request, limit, body_timeout), idempotency_key(request)

        body = await converting(parse_json, raw, TextBody)
        return await run_in_threadpool(service.stream_text, conversation_id, body.message, body.role,
                                       idempotency_key=key)

    async def audio_turn(conversation_id: str, request: Request) -> TurnEvents:
        # The upload arrives first: a slow one holds no place at the recognizer's gate.
        data = await read_audio(request, limit, body_timeout)
        return await run_in_threadpool(service.stream_audio, conversation_id, data,
                                       idempotency_key=idempotency_key(request))

    async def whole(stream: TurnEvents) -> Response:
        last = await reader.last_event(stream)
        return json_response(await converting(lambda: send_json(result_of(last))))

    def streamed(stream: TurnEvents) -> StreamingResponse:
        return StreamingResponse(reader.sse_lines(stream), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.get(OPEN_PATH, summary="Liveness (the one path that never needs the key)")
    async def health() -> dict[str, str]:  # async: answers at once, whatever the thread pool is doing
        return {"status": "ok"}

    @api.get("/metrics", include_in_schema=False)
    async def metrics_text() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

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
        raw = await read_body(request, limit, body_timeout)  # up to MAX_UPLOAD_MB of JSON and base64
        messages = await converting(lambda: create_messages(parse_json(raw, CreateBody)))
        return CreatedOut(id=await run_in_threadpool(service.create, messages))

    @api.post("/send/text/{conversation_id}", response_model=SendOut,
              summary="Send a text message; get the answer as text and speech",
              openapi_extra={**json_body(TextBody, required=True), **KEY_PARAMETER})
    async def send_text(conversation_id: str, request: Request) -> Response:
        return await whole(await text_turn(conversation_id, request))

    @api.post("/send/audio/{conversation_id}", response_model=SendOut,
              summary="Send a recording; get the transcript and the answer",
              openapi_extra={**AUDIO_BODY, **KEY_PARAMETER})
    async def send_audio(conversation_id: str, request: Request) -> Response:
        return await whole(await audio_turn(conversation_id, request))

    @api.post("/send/text/{conversation_id}/stream", response_class=StreamingResponse, responses=SSE_RESPONSE,
              summary="Send a text message; hear the answer sentence by sentence as it is written",
              openapi_extra={**json_body(TextBody, required=True), **KEY_PARAMETER})
    async def send_text_stream(conversation_id: str, request: Request) -> StreamingResponse:
        return streamed(await text_turn(conversation_id, request))

    @api.post("/send/audio/{conversation_id}/stream", response_class=StreamingResponse, responses=SSE_RESPONSE,
              summary="Send a recording; get the transcript, then the answer sentence by sentence",
              openapi_extra={**AUDIO_BODY, **KEY_PARAMETER})
    async def send_audio_stream(conversation_id: str, request: Request) -> StreamingResponse:
        return streamed(await audio_turn(conversation_id, request))

    @api.post("/transcribe", response_model=TranscriptOut, openapi_extra=AUDIO_BODY,
              summary="Speech to text only: what is said in a recording (no conversation, nothing stored)")
    async def transcribe(request: Request) -> TranscriptOut:
        data = await read_audio(request, limit, body_timeout)
        return TranscriptOut(text=await reader.run(service.transcribe, data))

    @api.post("/reset/{conversation_id}", response_model=ResetOut,
              summary="Remove every message; the id stays valid")
    async def reset(conversation_id: str) -> ResetOut:
        await run_in_threadpool(service.reset, conversation_id)
        return ResetOut(messages=[], roles=[], audio=[])

    # Last: /<id> would otherwise swallow the fixed one-word paths above.
    @api.get("/{conversation_id}", response_model=list[MessageOut],
             summary="All messages of a conversation, oldest first")
    async def get(conversation_id: str) -> Response:
        messages = await run_in_threadpool(service.get, conversation_id)
        return json_response(await converting(messages_json, messages))  # megabytes of base64 for a long one

    return api
