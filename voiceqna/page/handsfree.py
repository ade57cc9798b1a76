"""Hands-free listening, one session per browser tab: microphone audio in, turns out, in order.

The page's script (assets/handsfree.js) sends the tab's microphone as 16 kHz PCM, ~100 ms at a
time, one request at a time, each saying whether the answer is playing. A `HandsFreeSession`
feeds it to its own `Endpointer`; when a turn ends, the turn starts at once on the service as a
streamed spoken turn (the same as push-to-talk), so recognition runs while the page asks for the
turn's updates (`claim`). Turns of one tab run one after another, so they are stored in the
order they were spoken. While the answer plays the microphone is ignored (half-duplex), or, with
barge-in, watched for someone interrupting. A turn is started early, once a pause is
HANDSFREE_SPECULATE_S long (its recognition overlaps the rest of the pause), and thrown away
unstored if the speech goes on. Its words, once recognised, decide how long that pause must last
(voiceqna.turn_end: short after a finished sentence, long after an unfinished one). The service
stores a hands-free turn only once the page says its answer was heard (or cut short by a
barge-in: then only what was heard, marked).

A session ends when its tab says so (the switch, or the beacon sent when the tab closes), or
after `idle_s` without audio (a tab that went away without a word). Ending it never loses a
turn: a running turn is left to finish and is stored whole (the service does that for a
stream nobody reads), and turns not yet started are run to their end, in order.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from voiceqna import audio, turn_end
from voiceqna.config import HandsFreeOptions
from voiceqna.endpointing import Endpointer, SpeechStarted, State, TurnEnded
from voiceqna.errors import InvalidInput, VoiceQnAError
from voiceqna.ports import TurnEvents

logger = logging.getLogger(__name__)

IDLE_S = 60.0
"""A session that has had no audio for this long is ended (its tab closed without the beacon,
or lost its connection). The page sends audio every ~100 ms while hands-free is on."""
MAX_SESSIONS = 256
"""Sessions kept at most; opening one more ends the one idle the longest."""
MAX_CHUNK_S = 10.0
"""Audio one request may carry (a tab that fell behind sends what it buffered: ~0.1-0.5 s)."""
CLAIM_WAIT_S = 300.0
"""How long the page's request for a turn waits for the turns before it to finish."""
HOLD_S = 120.0
"""A turn's answer is stored once the page has played it (or cut it short, or gone away), at
most this long after it was spoken: a barge-in then stores only what was heard."""
UNCLAIMED_S = 60.0
"""A started turn that the page has not asked for in this long is let go (still stored whole)."""


@dataclass(frozen=True)
class Reply:
    """What one request of audio learns: the page shows `state` and acts on the rest."""

    state: str
    """listening, speech (someone is talking) or playback (the answer plays: not listening)."""
    speech_started: bool = False
    barge_in: bool = False
    """Someone started talking over the answer: stop playing it and say how much was heard."""
    turns: tuple[str, ...] = ()
    """Ids of turns that ended with this audio: ask for each (`claim`), in order."""
    error: str = ""
    """Set when nothing was done; "gone": this session no longer exists, open a new one."""

    def as_json(self) -> dict:
        return {"state": self.state, "speech_started": self.speech_started, "barge_in": self.barge_in,
                "turns": list(self.turns), "error": self.error}


GONE = "gone"


@dataclass
class HandsFreeTurn:
    """One turn the endpointer cut, from its end to the page having shown it."""

    id: str
    wav: bytes = field(repr=False)
    ended: TurnEnded = field(repr=False)
    conversation_id: str = ""
    """Set when it starts: the session's conversation at that moment."""
    stream: Optional[TurnEvents] = None
    error: Optional[Exception] = None
    """Why it could not start (unknown conversation, too long, recognizer busy, …)."""
    started_at: float = 0.0
    claimed: bool = False
    started: threading.Event = field(default_factory=threading.Event)
    verdict: Optional[turn_end.Verdict] = None
    """A turn started early: what its words say about the pause it was started in."""


class HandsFreeSession:
    """One tab's hands-free state: its endpointer, its conversation and its turns."""

    def __init__(self, token: str, conversation_id: str, endpointer: Endpointer, now: float, tab: str = "") -> None:
        self.token = token
        self.tab = tab
        """The tab's Gradio session hash ("" if unknown)."""
        self.conversation_id = conversation_id
        self.endpointer = endpointer
        self.last_seen = now
        self.lock = threading.RLock()
        self.turns: "OrderedDict[str, HandsFreeTurn]" = OrderedDict()
        """Turns not yet over, in the order they were spoken; the first may be running."""
        self.barged_in = False
        """A barge-in was reported for the answer now playing (reported once)."""
        self.early: Optional[HandsFreeTurn] = None
        """A turn started during a pause (HANDSFREE_SPECULATE_S), before the endpointer ended it:
        it becomes the turn if the pause ends the turn, and is thrown away if the speech goes on."""
        self.closed = False


class HandsFreeSessions:
    """Every tab's hands-free session, by token (an unguessable string the tab got when it
    switched hands-free on). Thread-safe: the page calls it from many request threads."""

    def __init__(self, service, options: HandsFreeOptions = HandsFreeOptions(), idle_s: float = IDLE_S,
                 max_sessions: int = MAX_SESSIONS, clock: Callable[[], float] = time.monotonic,
                 endpointer: Callable[[HandsFreeOptions], Endpointer] = Endpointer, hold_s: float = HOLD_S) -> None:
        problems = options.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.service = service
        self.options = options
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.clock = clock
        self.make_endpointer = endpointer
        self.hold_s = hold_s
        self.speculate_s = options.speculate_s if getattr(service, "cancellable_turns", False) else 0.0
        """HANDSFREE_SPECULATE_S, or 0 over a remote API (a turn started there is always stored)."""
        self.read_words = options.read_words and self.speculate_s > 0
        """HANDSFREE_READ_WORDS: the early turn's words decide how long its pause must last."""
        self.speculated = 0
        """Turns started early, during a pause (HANDSFREE_SPECULATE_S)."""
        self.adopted = 0
        """Of those, the ones that became the turn (the rest were thrown away)."""
        self._sessions: "OrderedDict[str, HandsFreeSession]" = OrderedDict()
        self._lock = threading.Lock()
        self._janitor: threading.Thread | None = None
        self._stopped = threading.Event()

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, token: str) -> bool:
        return token in self._sessions

    # --- the tab's switch ---

    def open(self, conversation_id: str, tab: str = "") -> str:
        """A new session listening for `conversation_id`; its token. `tab`: the tab's Gradio
        session, so that `close_tab` ends it when Gradio sees the tab go away."""
        self.prune()
        token = secrets.token_urlsafe(24)
        session = HandsFreeSession(token, conversation_id, self.make_endpointer(self.options), self.clock(), tab)
        with self._lock:
            self._sessions[token] = session
            evicted = []
            while len(self._sessions) > self.max_sessions:
                idlest = min(self._sessions.values(), key=lambda s: s.last_seen)
                evicted.append(self._sessions.pop(idlest.token))
        for old in evicted:
            logger.warning("Hands-free: %d sessions open, ending the one idle longest", self.max_sessions)
            self._end(old)
        self._start_janitor()
        logger.info("Hands-free session opened (%d open)", len(self._sessions))
        return token

    def close(self, token: str) -> bool:
        """End a session (hands-free switched off, or the tab closed); False if there was none."""
        with self._lock:
            session = self._sessions.pop(str(token), None)
        if session is None:
            return False
        self._end(session)
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
            self._end(session)
            logger.info("Hands-free session closed: its tab went away (%d open)", len(self._sessions))
        return len(gone)

    def set_conversation(self, token: str, conversation_id: str) -> None:
        """The tab now shows another conversation: the turns that start from now on go there."""
        session = self._get(token)
        if session is not None and conversation_id:
            with session.lock:
                session.conversation_id = conversation_id

    # --- the microphone ---

    def feed(self, token: str, samples: np.ndarray, playing: bool, barge_in: bool) -> Reply:
        """The tab's next audio (16 kHz mono float32); `playing`: the answer was playing while it
        was heard; `barge_in`: speech during the answer interrupts it (else it is ignored)."""
        session = self._get(token)
        if session is None:
            return Reply(State.LISTENING.value, error=GONE)
        if samples.size > MAX_CHUNK_S * audio.SAMPLE_RATE:
            return Reply(session.endpointer.state.value,
                         error=f"Too much audio at once ({samples.size / audio.SAMPLE_RATE:.1f} s): send at most "
                               f"{MAX_CHUNK_S:g} s per request.")
        with session.lock:
            if session.closed:
                return Reply(State.LISTENING.value, error=GONE)
            session.last_seen = self.clock()
            endpointer = session.endpointer
            barge = self._playback(session, playing, barge_in)
            started, turns = False, []
            for event in endpointer.feed(samples):
                if isinstance(event, SpeechStarted):
                    started = True
                    if event.barge_in:
                        barge = self._barge_in(session) or barge
                elif isinstance(event, TurnEnded):
                    turns.append(self._turn_ended(session, event))
            self._speculate(session)
            turns += self._read_words(session)
            self._let_go_of_unclaimed(session)
            return Reply(_shown_state(session), started, barge, tuple(turns))

    def _playback(self, session: HandsFreeSession, playing: bool, barge_in: bool) -> bool:
        """Follow the page's player: mute (or watch for barge-in) while it plays. True when the
        answer has started while someone was already talking and barge-in is on: that is a
        barge-in too (they keep the floor; the answer stops)."""
        endpointer = session.endpointer
        if not playing:
            session.barged_in = False
            if endpointer.state is State.PLAYBACK:
                endpointer.stop_playback()
            return False
        if endpointer.state is State.SPEECH and barge_in:
            return self._barge_in(session)
        if endpointer.state is not State.PLAYBACK and not session.barged_in:
            endpointer.start_playback(barge_in=barge_in)  # half-duplex drops a turn in progress
        elif endpointer.state is State.PLAYBACK and endpointer.barge_in != barge_in:
            endpointer.start_playback(barge_in=barge_in)  # the barge-in switch changed mid-answer
        return False

    @staticmethod
    def _barge_in(session: HandsFreeSession) -> bool:
        """Report a barge-in once per answer."""
        if session.barged_in:
            return False
        session.barged_in = True
        return True

    def _speculate(self, session: HandsFreeSession) -> None:
        """Start the turn early once a pause is `speculate_s` long and nothing else runs (its
        recognition then overlaps the rest of the pause); throw it away if the speech goes on."""
        endpointer, early = session.endpointer, session.early
        pause = endpointer.preview() if self.speculate_s and endpointer.pause_s >= self.speculate_s else None
        if early is not None and (pause is None or pause.end_s != early.ended.end_s):
            self._drop_early(session)  # the speech went on (or the answer began to play)
        if pause is None or session.early is not None or session.turns:
            return
        turn = HandsFreeTurn(uuid.uuid4().hex, audio.encode_wav(pause.audio), pause)
        session.early = turn
        self._start(session, turn)
        self.speculated += 1
        if self.read_words:  # until the words are known, the pause may last up to the longest wait
            endpointer.wait_for(self.options.unfinished_wait_s)

    def _read_words(self, session: HandsFreeSession) -> list[str]:
        """Once the early turn's words are known, they decide how long its pause must last; the
        turn ends now if the pause is that long already (its id, in a list)."""
        early = session.early
        if not self.read_words or early is None or early.verdict is not None:
            return []
        text = "" if early.error is not None else getattr(early.stream, "transcript", "")
        if text is None:
            return []  # still being recognised
        pause = early.ended
        early.verdict = turn_end.decide(text, pause.end_s - pause.start_s, self.options)
        logger.info("Hands-free pause after %.1f s of speech: %s (%s), wait %.2f s", pause.end_s - pause.start_s,
                    early.verdict.kind, early.verdict.reason, early.verdict.wait_s)
        ended = session.endpointer.wait_for(early.verdict.wait_s)
        return [self._turn_ended(session, ended)] if ended is not None else []

    @staticmethod
    def _drop_early(session: HandsFreeSession) -> None:
        early, session.early = session.early, None
        _cancel(early)

    def _turn_ended(self, session: HandsFreeSession, ended: TurnEnded) -> str:
        early, session.early = session.early, None
        if early is not None and early.ended.end_s == ended.end_s and not session.turns:
            logger.info("Hands-free turn %s: %.1f s of speech (%s), started %.2f s early", early.id[:8],
                        ended.end_s - ended.start_s, ended.reason, ended.detected_s - early.ended.detected_s)
            early.ended = ended  # the pause it was started in has ended the turn: it is the turn
            session.turns[early.id] = early
            self.adopted += 1
            return early.id
        _cancel(early)
        turn = HandsFreeTurn(uuid.uuid4().hex, audio.encode_wav(ended.audio), ended)
        session.turns[turn.id] = turn
        logger.info("Hands-free turn %s: %.1f s of speech (%s)", turn.id[:8], ended.end_s - ended.start_s,
                    ended.reason)
        self._start_next(session)
        return turn.id

    def _start_next(self, session: HandsFreeSession) -> None:
        """Start the first turn that is not over, unless it runs already (one at a time)."""
        turn = next(iter(session.turns.values()), None)
        if turn is not None and not turn.started.is_set():
            self._start(session, turn)

    def _start(self, session: HandsFreeSession, turn: HandsFreeTurn) -> None:
        turn.conversation_id = session.conversation_id
        turn.started_at = self.clock()
        try:
            turn.stream = self.service.stream_audio(turn.conversation_id, turn.wav, hold_s=self.hold_s)
        except Exception as exc:  # refused before it started: the page shows why
            if not isinstance(exc, VoiceQnAError):
                logger.exception("Hands-free turn could not start")
            turn.error = exc
        turn.started.set()
        if session.closed:
            self._abandon(session, turn)

    def _let_go_of_unclaimed(self, session: HandsFreeSession) -> None:
        """A turn the page never asked for (its request was lost) must not hold up the next."""
        for turn in list(session.turns.values()):
            if turn.started.is_set() and not turn.claimed and self.clock() - turn.started_at > UNCLAIMED_S:
                logger.warning("Hands-free turn %s was never shown; it is stored whole", turn.id[:8])
                self._abandon(session, turn)

    def _abandon(self, session: HandsFreeSession, turn: HandsFreeTurn) -> None:
        """Nobody will read this turn: it finishes on its own (stored whole); the next may start."""
        if turn.stream is not None:
            turn.stream.close()
        self._over(session, turn)

    def _over(self, session: HandsFreeSession, turn: HandsFreeTurn) -> None:
        """Its events have all been read, or nobody will read them: the next turn may start."""
        session.turns.pop(turn.id, None)
        if not session.closed:
            self._start_next(session)

    # --- the page's request for a turn ---

    def claim(self, token: str, turn_id: str, wait_s: float = CLAIM_WAIT_S) -> HandsFreeTurn:
        """The turn, once it has started (after the turns before it are over). The caller reads
        its stream, then calls `finished`. InvalidInput for a turn this session does not have."""
        session = self._get(token)
        if session is None:
            raise InvalidInput("This hands-free session has ended: switch hands-free off and on.")
        with session.lock:
            turn = session.turns.get(str(turn_id))
            if turn is None or turn.claimed:
                raise InvalidInput("This hands-free turn is unknown or already shown: switch hands-free off and on.")
            turn.claimed = True
        if not turn.started.wait(wait_s):
            with session.lock:
                self._over(session, turn)
            raise InvalidInput("The turns before this one did not finish in time: ask again.")
        return turn

    def finished(self, token: str, turn_id: str) -> None:
        """The page has read the turn to its end (or stopped reading): the next turn may start."""
        session = self._get(token)
        if session is None:
            return
        with session.lock:
            turn = session.turns.get(str(turn_id))
            if turn is not None:
                if turn.stream is not None and not turn.stream.finished:
                    turn.stream.close()
                self._over(session, turn)

    # --- ending sessions ---

    def prune(self) -> int:
        """End the sessions that have had no audio for `idle_s`; how many."""
        cutoff = self.clock() - self.idle_s
        with self._lock:
            idle = [s for s in self._sessions.values() if s.last_seen < cutoff]
            for session in idle:
                del self._sessions[session.token]
        for session in idle:
            logger.info("Hands-free session idle for %.0f s: ended (%d open)", self.idle_s, len(self._sessions))
            self._end(session)
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
            self._end(session)

    def _end(self, session: HandsFreeSession) -> None:
        """No turn is lost: the running one finishes and is stored whole; the ones waiting run
        after it, in order, on a thread of their own, each read by nobody."""
        with session.lock:
            session.closed = True
            self._drop_early(session)
            turns = list(session.turns.values())
            session.turns.clear()
        running = [t for t in turns if t.started.is_set()]
        waiting = [t for t in turns if not t.started.is_set()]
        for turn in running:
            if turn.stream is not None and not turn.claimed:
                turn.stream.close()
            elif turn.stream is not None:
                turn.stream.heard()  # nobody will say it was heard: store it whole now; its reader closes it
        if waiting:
            threading.Thread(target=self._run_left_over, args=(session, running, waiting),
                             name="handsfree-left-over", daemon=True).start()

    def _run_left_over(self, session: HandsFreeSession, running: list[HandsFreeTurn],
                       waiting: list[HandsFreeTurn]) -> None:
        for turn in running:
            if turn.stream is not None:
                _wait_for_end(turn.stream)
        for turn in waiting:
            self._start(session, turn)
            if turn.stream is not None:
                _wait_for_end(turn.stream)
        logger.info("Hands-free: %d turn(s) left when the tab went away were stored", len(waiting))

    def _get(self, token: str) -> HandsFreeSession | None:
        return self._sessions.get(str(token)) if token else None


def _wait_for_end(stream: TurnEvents) -> None:
    """Until the turn is stored (or failed); a stream someone else reads is only waited for."""
    thread = getattr(stream, "thread", None)
    if thread is not None:
        thread.join()
        return
    try:
        stream.result()
    except Exception:  # the turn's own error: nothing was stored, which is all there is to know
        pass


def _shown_state(session: HandsFreeSession) -> str:
    """The endpointer's state, except listening (듣는 중) while a pause waits for the rest of an
    unfinished sentence: the page is listening then, not hearing speech."""
    early, state = session.early, session.endpointer.state
    if state is State.SPEECH and early is not None and early.verdict is not None \
            and early.verdict.kind == turn_end.UNFINISHED:
        return State.LISTENING.value
    return state.value


def _cancel(turn: Optional[HandsFreeTurn]) -> None:
    """Throw away a turn started early: nothing of it is stored."""
    if turn is not None and turn.stream is not None:
        turn.stream.cancel()


def pcm16_samples(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32 in [-1, 1]."""
    if len(data) % 2:
        raise InvalidInput("The audio must be 16-bit PCM: an even number of bytes.")
    return audio.from_pcm16(np.frombuffer(data, dtype="<i2"))
