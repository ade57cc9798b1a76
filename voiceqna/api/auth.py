"""The API key: with API_KEY set, no request but the liveness probe passes without it."""

from __future__ import annotations

import secrets
from typing import Any, Callable

from voiceqna.api.errors import error_response

OPEN_PATH = "/health"
"""With API_KEY set, the only path that answers without the key (for load balancers' liveness
probes); it says nothing but {"status": "ok"}."""


class RequireKey:
    """ASGI middleware: with API_KEY set, every request but OPEN_PATH needs the key, sent as
    `Authorization: Bearer <key>` or `X-API-Key: <key>` — the routes, /info, /docs, /openapi.json
    and unknown paths alike (so nothing about the API is visible without it), and WebSockets as
    well as HTTP: only the server's own lifespan messages pass without it."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan" or self.allowed(dict(scope.get("headers", []))):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and route_path(scope) == OPEN_PATH:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
            await receive()  # websocket.connect; a server that cannot send a 401 gets a refused handshake
            await send({"type": "websocket.close", "code": 1008, "reason": "needs the API key"})
            return
        if scope["type"] not in ("http", "websocket"):  # any other kind of connection: nothing passes unchecked
            raise RuntimeError(f"RequireKey: refusing an unknown ASGI scope type {scope['type']!r}")
        response = error_response(
            401, "This API needs its key: send 'Authorization: Bearer <API_KEY>' or 'X-API-Key: <API_KEY>'.",
            "Unauthorized", {"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)  # on a WebSocket: the 401 instead of the handshake

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
