"""A streamed turn as Server-Sent Events: `event: <name>` and `data: <one JSON object>` per event."""

from __future__ import annotations

import json
import time
from typing import AsyncIterator, Callable, TypeVar

import anyio

from voiceqna.api.errors import error_body
from voiceqna.api.schemas import AudioOut, HeardOut, SentenceOut, b64, send_out
from voiceqna.ports import Done, Failed, Heard, Sentence, SentenceAudio, TurnEvent, TurnEvents

T = TypeVar("T")

POLL_S = 1.0
"""How long one wait for the next event lasts before the reader checks the client is still there."""
KEEP_ALIVE_S = 15.0
"""A comment line after this much silence, so proxies do not close a slow turn's connection."""


def event_data(event: TurnEvent) -> dict:
    """The JSON of one event; a `done` event's is exactly what the non-streaming route returns."""
    if isinstance(event, Heard):
        return HeardOut(text=event.text).model_dump()
    if isinstance(event, Sentence):
        return SentenceOut(index=event.index, text=event.text).model_dump()
    if isinstance(event, SentenceAudio):
        return AudioOut(index=event.index, audio=b64(event.audio)).model_dump()
    if isinstance(event, Done):
        return send_out(event.result).model_dump()
    if isinstance(event, Failed):
        return error_body(event.error)
    raise TypeError(f"not a turn event: {event!r}")


def sse(event: TurnEvent) -> str:
    return f"event: {event.name}\ndata: {json.dumps(event_data(event), ensure_ascii=False)}\n\n"


class EventReader:
    """Reads turn streams for the event loop. Each wait happens on a worker thread of its own
    pool (so streams never queue behind the routes' thread pool) and gives up after POLL_S,
    so a client that goes away frees everything within a second; the turn itself goes on to
    its end (see voiceqna.service.TurnStream)."""

    def __init__(self, max_waiting: int = 1000) -> None:
        self.limiter = anyio.CapacityLimiter(max_waiting)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """A blocking call that may wait in the recognizer's queue, on this pool's threads."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self.limiter)

    async def _next(self, stream: TurnEvents) -> TurnEvent | None:
        return await anyio.to_thread.run_sync(stream.next_event, POLL_S, abandon_on_cancel=True,
                                              limiter=self.limiter)

    async def _next_sse(self, stream: TurnEvents) -> str | None:
        """The next event already as SSE text: its base64 and JSON are made on the worker thread too."""
        def wait_and_render() -> str | None:
            event = stream.next_event(POLL_S)
            return None if event is None else sse(event)

        return await anyio.to_thread.run_sync(wait_and_render, abandon_on_cancel=True, limiter=self.limiter)

    async def sse_lines(self, stream: TurnEvents) -> AsyncIterator[str]:
        """The stream's events as SSE text, with a comment line after KEEP_ALIVE_S of silence."""
        quiet_since = time.monotonic()
        try:
            while not stream.finished:
                text = await self._next_sse(stream)
                if text is not None:
                    quiet_since = time.monotonic()
                    yield text
                elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
                    quiet_since = time.monotonic()
                    yield ": still working\n\n"
        finally:
            stream.close()

    async def last_event(self, stream: TurnEvents) -> TurnEvent | None:
        """For the non-streaming routes: the turn's Done or Failed, waited for without holding
        a thread of the routes' pool."""
        last = None
        try:
            while not stream.finished:
                last = await self._next(stream) or last
        finally:
            stream.close()
        return last
