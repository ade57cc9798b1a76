"""A turn's events handed from the thread that runs it to whoever reads them (TurnStream)."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional

from voiceqna.ports import Done, Failed, Heard, SentenceAudio, TurnEvent, TurnResult, result_of

LOOKAHEAD = 2
"""Spoken sentences a stream may get ahead of its reader; then it waits (bounded memory)."""


class TurnStream:
    """The events of one turn, in order, as they happen. Iterate it (or call `next_event`).

    The turn runs on a thread of its own from the moment the stream is made: a reader that
    stops reading, or goes away (`close`), does not stop it — the answer is finished and
    stored whole, as a non-streamed turn would be, so a retry or a GET sees it. The thread
    waits for a slow reader only while it is LOOKAHEAD spoken sentences ahead.
    `interrupt(played)` is different: the user cut the answer short (barge-in), so the rest
    is not written, and the stored answer is the first `played` sentences, marked.
    With `hold_s` (hands-free), the turn waits, once every sentence is spoken and before it is
    stored, until the reader says the answer has been heard (`heard`), cuts it short
    (`interrupt`) or goes away (`close`), at most `hold_s`: a barge-in while the answer still
    plays (speech is made far faster than it is played) then still stores only what was heard.
    `holding` is True while it waits.
    """

    def __init__(self, run: Callable[["TurnStream"], object], hold_s: float = 0.0) -> None:
        """`run(stream)` plays the turn through, putting each event on `stream`."""
        self.events: queue.Queue[TurnEvent] = queue.Queue()
        self.interrupted: Optional[int] = None
        self.hold_s = hold_s
        self.holding = False
        self.cancelled = False
        self.transcript: Optional[str] = None
        """What was heard, as soon as it is known ("" if the turn failed first): hands-free reads
        it during a pause to decide how long to wait (voiceqna.turn_end)."""
        self._released = threading.Event()
        self._ahead = threading.Condition()
        self._unread_audio = 0
        self._abandoned = False
        self._finished = False
        self.thread = threading.Thread(target=run, args=(self,), name="turn", daemon=True)
        self.thread.start()

    def put(self, event: TurnEvent) -> None:
        """From the turn's thread: hand one event over, waiting while too far ahead of the reader."""
        if isinstance(event, Heard):
            self.transcript = event.text
        elif isinstance(event, Failed) and self.transcript is None:
            self.transcript = ""
        with self._ahead:
            if isinstance(event, SentenceAudio):
                self._ahead.wait_for(lambda: self._unread_audio < LOOKAHEAD or self._abandoned
                                     or self.interrupted is not None)
                self._unread_audio += 1
        self.events.put(event)

    def next_event(self, timeout: Optional[float] = None) -> Optional[TurnEvent]:
        """The next event; None after the last one, or when `timeout` passes first."""
        if self._finished:
            return None
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(event, SentenceAudio):
            with self._ahead:
                self._unread_audio -= 1
                self._ahead.notify_all()
        self._finished = isinstance(event, (Done, Failed))
        return event

    @property
    def finished(self) -> bool:
        return self._finished

    def __iter__(self) -> Iterator[TurnEvent]:
        try:
            while (event := self.next_event()) is not None:
                yield event
        finally:  # a reader that stops iterating early has gone away
            if not self._finished:
                self.close()

    def __enter__(self) -> "TurnStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The reader is gone: the turn goes on to its end without waiting for it."""
        with self._ahead:
            self._abandoned = True
            self._ahead.notify_all()
        self._released.set()

    def interrupt(self, played: int) -> None:
        """Barge-in: stop the answer; keep (and store) only its first `played` sentences."""
        with self._ahead:
            if self.interrupted is None:
                self.interrupted = max(0, int(played))
            self._ahead.notify_all()
        self._released.set()

    def cancel(self) -> None:
        """Throw the turn away: it stops where it is and nothing of it is stored (hands-free
        started it early, during a pause, and the speech went on)."""
        self.cancelled = True
        self.interrupt(0)

    def heard(self) -> None:
        """The answer has been heard to its end: a held turn is stored now."""
        self._released.set()

    def wait(self) -> None:
        """Until the turn is stored (or failed), without reading its events."""
        self.thread.join()

    def wait_until_heard(self) -> None:
        """From the turn's thread, before storing: wait for `heard`, `interrupt` or `close`
        (at most `hold_s`; no wait without it)."""
        if self.hold_s <= 0:
            return
        self.holding = True
        try:
            self._released.wait(self.hold_s)
        finally:
            self.holding = False

    def result(self) -> TurnResult:
        """Wait for the end; the turn's result, or its error raised."""
        last = None
        for last in self:
            pass
        return result_of(last)
