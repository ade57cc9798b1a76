"""Hands-free listening: every tab's session by token, and the janitor that ends idle ones.

The page's script (assets/handsfree.js) sends the tab's microphone as 16 kHz PCM, ~100 ms at a
time, one request at a time, each saying whether the answer is playing; each tab's session
(handsfree_session.py) turns it into turns, in order. A session ends when its tab says so (the
switch, or the beacon sent when the tab closes), when Gradio sees the tab go away, after `idle_s`
without audio (a tab that went away without a word), or at shutdown (`close_all`). Ending it
never loses a turn (HandsFreeSession.end).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable

import numpy as np

from voiceqna.config import HandsFreeOptions
from voiceqna.endpointing import Endpointer, State
from voiceqna.errors import InvalidInput
from voiceqna.page.handsfree_session import (
    CLAIM_WAIT_S,
    GONE,
    HOLD_S,
    HandsFreeSession,
    HandsFreeTurn,
    Reply,
    TurnRules,
)
from voiceqna.ports import VoiceChat

logger = logging.getLogger(__name__)

IDLE_S = 60.0
"""A session that has had no audio for this long is ended (its tab closed without the beacon,
or lost its connection). The page sends audio every ~100 ms while hands-free is on."""
MAX_SESSIONS = 256
"""Sessions kept at most; opening one more ends the one idle the longest."""


class HandsFreeSessions:
    """Every tab's hands-free session, by token (an unguessable string the tab got when it
    switched hands-free on). Thread-safe: the page calls it from many request threads."""

    def __init__(self, service: VoiceChat, options: HandsFreeOptions = HandsFreeOptions(), idle_s: float = IDLE_S,
                 max_sessions: int = MAX_SESSIONS, clock: Callable[[], float] = time.monotonic,
                 endpointer: Callable[[HandsFreeOptions], Endpointer] = Endpointer, hold_s: float = HOLD_S) -> None:
        problems = options.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.options = options
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.make_endpointer = endpointer
        self.rules = TurnRules(service, clock, hold_s, options.speculate_s if service.cancellable_turns else 0.0, options)
        self._sessions: "OrderedDict[str, HandsFreeSession]" = OrderedDict()
        self._lock = threading.Lock()
        self._janitor: threading.Thread | None = None
        self._stopped = threading.Event()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, token: str) -> bool:
        return token in self._sessions

    @property
    def speculated(self) -> int:
        """Turns started early, during a pause (HANDSFREE_SPECULATE_S)."""
        return self.rules.speculated

    @property
    def adopted(self) -> int:
        """Of those, the ones that became the turn (the rest were thrown away)."""
        return self.rules.adopted

    # --- the tab's switch ---

    def open(self, conversation_id: str, tab: str = "") -> str:
        """A new session listening for `conversation_id`; its token. `tab`: the tab's Gradio
        session, so that `close_tab` ends it when Gradio sees the tab go away."""
        self.prune()
        token = secrets.token_urlsafe(24)
        session = HandsFreeSession(token, conversation_id, self.make_endpointer(self.options), self.rules, tab)
        with self._lock:
            self._sessions[token] = session
            evicted = []
            while len(self._sessions) > self.max_sessions:
                idlest = min(self._sessions.values(), key=lambda s: s.last_seen)
                evicted.append(self._sessions.pop(idlest.token))
        for old in evicted:
            logger.warning("Hands-free: %d sessions open, ending the one idle longest", self.max_sessions)
            old.end()
        self._start_janitor()
        logger.info("Hands-free session opened (%d open)", len(self._sessions))
        return token

    def close(self, token: str) -> bool:
        """End a session (hands-free switched off, or the tab closed); False if there was none."""
        with self._lock:
            session = self._sessions.pop(str(token), None)
        if session is None:
            return False
        session.end()
        logger.info("Hands-free session closed by its tab (%d open)", len(self._sessions))
        return True

    def close_tab(self, tab: str) -> int:
        """End the sessions of a tab that went away (its beacon may never have arrived); how many."""
        if not tab:
            return 0
        with self._lock:
            gone = [s for s in self._sessions.values() if s.tab == tab]
            for session in gone:
                del self._sessions[session.token]
        for session in gone:
            session.end()
            logger.info("Hands-free session closed: its tab went away (%d open)", len(self._sessions))
        return len(gone)

    def set_conversation(self, token: str, conversation_id: str) -> None:
        """The tab now shows another conversation: the turns that start from now on go there."""
        session = self._get(token)
        if session is not None:
            session.set_conversation(conversation_id)

    # --- the tab's requests, handed to its session ---

    def feed(self, token: str, samples: np.ndarray, playing: bool, barge_in: bool, speak: bool = True) -> Reply:
        """The tab's next audio (see HandsFreeSession.feed); "gone" for an unknown token."""
        session = self._get(token)
        if session is None:
            return Reply(State.LISTENING.value, error=GONE)
        return session.feed(samples, playing, barge_in, speak)

    def claim(self, token: str, turn_id: str, wait_s: float = CLAIM_WAIT_S) -> HandsFreeTurn:
        """The turn, once it has started (see HandsFreeSession.claim)."""
        session = self._get(token)
        if session is None:
            raise InvalidInput("This hands-free session has ended: switch hands-free off and on.")
        return session.claim(turn_id, wait_s)

    def finished(self, token: str, turn_id: str) -> None:
        """The page has read the turn to its end (or stopped reading): the next turn may start."""
        session = self._get(token)
        if session is not None:
            session.finished(turn_id)

    # --- ending sessions ---

    def prune(self) -> int:
        """End the sessions that have had no audio for `idle_s`; how many."""
        cutoff = self.rules.clock() - self.idle_s
        with self._lock:
            idle = [s for s in self._sessions.values() if s.last_seen < cutoff]
            for session in idle:
                del self._sessions[session.token]
        for session in idle:
            logger.info("Hands-free session idle for %.0f s: ended (%d open)", self.idle_s, len(self._sessions))
            session.end()
        return len(idle)

    def _start_janitor(self) -> None:
        """A thread that ends idle sessions even when no tab calls (started with the first session)."""
        with self._lock:
            if self._janitor is not None:
                return
            self._janitor = threading.Thread(target=self._sweep, name="handsfree-janitor", daemon=True)
        self._janitor.start()

    def _sweep(self) -> None:
        while not self._stopped.wait(max(self.idle_s / 4, 0.05)):
            try:
                self.prune()
            except Exception:  # never let the janitor die: idle sessions would pile up
                logger.exception("Hands-free: pruning idle sessions failed")

    def close_all(self) -> None:
        """End every session (the server is shutting down); their turns are still stored."""
        self._stopped.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.end()

    def _get(self, token: str) -> HandsFreeSession | None:
        return self._sessions.get(str(token)) if token else None
