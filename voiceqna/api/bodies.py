"""Reading request bodies: size and time limits while they arrive, JSON as Unity sends it,
and audio as multipart or raw bytes (with the seed's boundary-less Unity upload)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote_plus

import anyio
from fastapi import Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from voiceqna.api.schemas import TextBody
from voiceqna.errors import AudioTooLarge, BadAudio, InvalidInput, RequestTimeout, shown

ENVELOPE_BYTES = 64 * 1024
"""Room for multipart headers and JSON punctuation on top of MAX_UPLOAD_MB."""
DISCARD_BYTES = 32 * 1024 * 1024
"""How far past the limit a body is still read (and dropped) so that its client gets the 413 JSON;
a body announced larger than that is refused at once and its connection closed."""

RAW_AUDIO_TYPES = ("audio/", "video/", "application/octet-stream")
"""Content types whose body is taken as the audio file itself (plus Unity's boundary-less multipart)."""


def limited(request: Request, limit: int, timeout_s: float) -> Request:
    """The same request, refusing (AudioTooLarge) as soon as its body passes `limit` bytes, and
    (RequestTimeout) when the whole body has not arrived `timeout_s` after the headers.

    Content-Length is checked first, so an announced 1 GB body is refused before a byte is read;
    a chunked body is counted while it streams in. An over-limit body of at most DISCARD_BYTES
    more is read to its end and dropped before the 413 goes out: a client that writes its whole
    body before reading (Python's urllib, many simple HTTP libraries) then gets the 413 JSON
    instead of a connection reset. The wait is asynchronous: a slow client holds no thread and
    keeps no other request waiting.
    """
    def too_large() -> AudioTooLarge:
        return AudioTooLarge(
            f"The request body is over the limit of {limit / 1024 / 1024:.1f} MB: "
            "send a shorter clip (or raise MAX_UPLOAD_MB on the server)."
        )

    declared = request.headers.get("content-length", "")
    allowed, readable = limit + ENVELOPE_BYTES, limit + ENVELOPE_BYTES + DISCARD_BYTES
    if declared.isdigit() and int(declared) > readable:
        raise too_large()  # not worth reading: answered at once, and the connection is closed
    received = 0
    deadline = time.monotonic() + timeout_s

    async def next_message() -> dict:
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
        return message

    async def receive() -> dict:
        if declared.isdigit() and int(declared) > allowed:
            await discard()
            raise too_large()
        message = await next_message()
        if received > allowed:
            if message.get("more_body", False):
                await discard()
            raise too_large()
        return message

    async def discard() -> None:
        """Read the rest of the body and drop it, while it stays within `readable` and the deadline."""
        try:
            while received <= readable:
                message = await next_message()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
        except RequestTimeout:
            return

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
        f"Content-Type {shown(media)} is not audio: send the recording as the multipart/form-data field "
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
