"""Operators' metrics of one app (GET /metrics, Prometheus text format, names prefixed voiceqna_).

Each app has its own registry (several apps in one process never share counters), and each
process or replica serves only its own: Prometheus scrapes every instance and sums them.
Labels carry only fixed words (route, kind, outcome, an error's type): never a conversation
id, text or address.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sized

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from voiceqna.ports import Failed, Timings, TurnEvent


@dataclass(frozen=True)
class FrontDoor:
    """Where a turn was asked for: `route` "rest" or "page"; `streamed` as the client asked
    (a REST route ending in /stream), None where the service's own way of running it tells."""

    route: str = "page"
    streamed: Optional[bool] = None


PAGE = FrontDoor()
ROUTE: ContextVar[FrontDoor] = ContextVar("voiceqna_route")
"""The front door of the turns asked for in this context (the REST API sets it for its requests;
PAGE where nothing did)."""

SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)
"""Histogram buckets, from a short clip's decoding to a long answer spoken on a busy CPU."""


def current_route() -> FrontDoor:
    return ROUTE.get(PAGE)


class RestRoute:
    """ASGI middleware of the REST API: the turns its requests ask for count as route="rest"."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        ROUTE.set(FrontDoor("rest", scope.get("path", "").endswith("/stream")))
        await self.app(scope, receive, send)


def outcome_of(last: TurnEvent, cancelled: bool = False) -> str:
    """How a turn ended, in one word: answered, not_heard, repeated, interrupted, cancelled or failed."""
    if isinstance(last, Failed):
        return "cancelled" if cancelled else "failed"
    result = last.result
    if result.repeated:
        return "repeated"
    if result.interrupted:
        return "interrupted"
    return "answered" if result.stored else "not_heard"


class Metrics:
    """The counters, gauges and histograms of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.turns = Counter("voiceqna_turns", "Turns by front door (rest, page), kind (text, audio), streamed or "
                             "not, and outcome", ["route", "kind", "streamed", "outcome"], registry=registry)
        self.decode = Histogram("voiceqna_decode_seconds", "Decoding a spoken turn's upload",
                                buckets=SECONDS, registry=registry)
        self.recognition = Histogram("voiceqna_recognition_seconds", "Recognising a spoken turn (not its wait)",
                                     buckets=SECONDS, registry=registry)
        self.first_token = Histogram("voiceqna_first_token_seconds", "From a turn's start to the chat engine's "
                                     "first token", ["kind"], buckets=SECONDS, registry=registry)
        self.first_audio = Histogram("voiceqna_first_audio_seconds", "From a turn's start to its first spoken "
                                     "sentence", ["kind"], buckets=SECONDS, registry=registry)
        self.turn_time = Histogram("voiceqna_turn_seconds", "A whole turn, from its start to its answer stored",
                                   ["kind"], buckets=SECONDS, registry=registry)
        self.waiting = Gauge("voiceqna_recognitions_waiting", "Spoken turns waiting for the recognizer",
                             registry=registry)
        self.refused = Counter("voiceqna_turns_refused", "Spoken turns refused by admission (too many waiting: "
                               "503 with Retry-After)", registry=registry)
        self.handsfree_sessions = Gauge("voiceqna_handsfree_sessions", "Open hands-free sessions of the page",
                                        registry=registry)
        self.errors = Counter("voiceqna_errors", "Errors answered, by type: the REST API's error answers and "
                              "the error events of streamed turns", ["type"], registry=registry)

    def turn_ended(self, door: FrontDoor, kind: str, streamed: bool, last: TurnEvent, timings: Timings,
                   cancelled: bool = False) -> None:
        """Count one turn and its stage times (those that ran). `streamed`: the service ran it as
        a stream (the door's own word wins). A streamed turn's error is counted here, a whole
        turn's where the REST API answers it (`error`)."""
        streamed = streamed if door.streamed is None else door.streamed
        self.turns.labels(door.route, kind, "yes" if streamed else "no", outcome_of(last, cancelled)).inc()
        for histogram, ms in ((self.decode, timings.decode_ms), (self.recognition, timings.asr_ms)):
            if ms > 0:
                histogram.observe(ms / 1000)
        for histogram, ms in ((self.first_token, timings.first_token_ms), (self.first_audio, timings.first_audio_ms),
                              (self.turn_time, timings.total_ms)):
            if ms > 0:
                histogram.labels(kind).observe(ms / 1000)
        if streamed and isinstance(last, Failed) and not cancelled:
            self.error(type(last.error).__name__)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def watch_gate(self, waiting: Callable[[], int]) -> None:
        """Read the recognizer's queue length when scraped."""
        self.waiting.set_function(waiting)

    def watch_handsfree(self, sessions: Sized) -> None:
        """Read the number of open hands-free sessions when scraped."""
        self.handsfree_sessions.set_function(lambda: len(sessions))

    def exposition(self) -> tuple[bytes, str]:
        """The body of GET /metrics and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def of(service: object) -> Metrics:
    """The metrics `service` counts its turns in (a ChatService has them); a service without any
    (a remote API's client, a test's fake) gets a set of its own, kept on it, so that the page
    and the REST routes over one service share it."""
    metrics = getattr(service, "metrics", None)
    if not isinstance(metrics, Metrics):
        metrics = Metrics()
        try:
            service.metrics = metrics  # type: ignore[attr-defined]
        except AttributeError:  # a service that takes no attributes: the metrics live with the caller
            pass
    return metrics
