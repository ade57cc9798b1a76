"""Every failure of the REST API as JSON `{"error", "status", "type"}`, its status from
`voiceqna.errors.ERRORS`; never a traceback."""

from __future__ import annotations

import json
import logging
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from voiceqna.errors import VoiceQnAError, kind_of, shown

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 5
"""Sent with every 503 (an engine down, or the server too busy): when to try again."""


def error_response(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status, "type": kind}, status_code=status, headers=headers)


def error_body(exc: VoiceQnAError) -> dict:
    """What a client gets for one of the project's errors (also the data of a stream's error event)."""
    return {"error": str(exc), "status": kind_of(exc).status, "type": type(exc).__name__}


def add_error_handlers(api: FastAPI, count: Callable[[str], None] = lambda kind: None) -> None:
    """JSON errors on `api`; `count(type)` is told of each (GET /metrics)."""

    async def project_error(request: Request, exc: VoiceQnAError) -> JSONResponse:
        body = error_body(exc)
        logger.info("%s %s → %d %s: %s", request.method, request.url.path, body["status"], body["type"], exc)
        retry = {"Retry-After": str(RETRY_AFTER_S)} if body["status"] == 503 else None
        return JSONResponse(body, status_code=body["status"], headers=retry)

    async def validation_error(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        return error_response(422, describe_validation(exc.errors()), "InvalidInput")

    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message, kind = str(exc.detail), "HTTPError"
        method = request.method if len(request.method) <= 16 and request.method.isalpha() else "This method"
        if exc.status_code == 404:
            kind = "NotFound"
            message = f"No route {method} {shown(request.url.path)}: see /docs for the API."
        elif exc.status_code == 405:
            message = f"{method} is not allowed on {shown(request.url.path)}: see /docs for the API."
        return error_response(exc.status_code, message, kind, getattr(exc, "headers", None))

    async def disconnected(request: Request, exc: ClientDisconnect) -> JSONResponse:
        logger.info("%s %s: the client went away before sending its whole body", request.method, request.url.path)
        return error_response(400, "The client disconnected before sending the whole body.", "InvalidInput")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log (Starlette re-raises it to the server), never to the client.
        logger.error("Unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return error_response(500, "Internal error: the server logged the details. Try again, "
                                   "or report it if it persists.", "InternalError")

    def counted(handler: Callable) -> Callable:
        async def answer(request: Request, exc: Exception) -> JSONResponse:
            response = await handler(request, exc)
            count(json.loads(response.body)["type"])
            return response
        return answer

    api.add_exception_handler(VoiceQnAError, counted(project_error))
    api.add_exception_handler(RequestValidationError, counted(validation_error))
    api.add_exception_handler(ValidationError, counted(validation_error))
    api.add_exception_handler(StarletteHTTPException, counted(http_error))
    api.add_exception_handler(ClientDisconnect, counted(disconnected))
    api.add_exception_handler(Exception, counted(unexpected))


def describe_validation(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts) + ". See /docs for the expected body."
