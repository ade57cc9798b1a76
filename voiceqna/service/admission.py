"""Who may run when: the recognizer's queue (RecognitionGate) and one lock per conversation."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from voiceqna.errors import Overloaded


class RecognitionGate:
    """Spoken turns: `at_once` are recognised at a time, up to `waiting` more wait, and any
    more are refused at once (Overloaded: 503 with Retry-After over REST) rather than left
    hanging. A turn reserves its place when it is asked for (after its upload arrived, so a
    slow upload holds nothing) and gives it back as soon as its recognition is over."""

    def __init__(self, at_once: int, waiting: int) -> None:
        self.slots = threading.Semaphore(at_once)
        self.capacity = at_once + waiting
        self.admitted = 0
        self.recognising = 0
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Admitted turns not yet at the recognizer (GET /metrics)."""
        return self.admitted - self.recognising

    def reserve(self) -> "Ticket":
        with self._lock:
            if self.admitted >= self.capacity:
                raise Overloaded(
                    f"The server is busy: {self.admitted} spoken turns are already being recognised or waiting. "
                    "Try again in a few seconds; nothing was stored."
                )
            self.admitted += 1
        return Ticket(self)


class Ticket:
    """A reserved place at the gate: `with ticket:` waits for a slot and recognises; `release`
    (idempotent) gives the place back, whether or not the turn got that far."""

    def __init__(self, gate: RecognitionGate) -> None:
        self.gate = gate
        self.released = False

    def __enter__(self) -> None:
        self.gate.slots.acquire()
        with self.gate._lock:
            self.gate.recognising += 1

    def __exit__(self, *exc: object) -> None:
        with self.gate._lock:
            self.gate.recognising -= 1
        self.gate.slots.release()
        self.release()

    def release(self) -> None:
        with self.gate._lock:
            if not self.released:
                self.released = True
                self.gate.admitted -= 1


class ConversationLocks:
    """One lock per conversation that has a turn running or waiting: turns on one conversation
    take turns (each sees the answer before it), turns on different ones never wait for each
    other. Locks are made on demand and dropped when unused (memory stays bounded)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, list] = {}  # id -> [lock, users]

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            entry = self._locks.setdefault(conversation_id, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[conversation_id]

    def __len__(self) -> int:
        return len(self._locks)
