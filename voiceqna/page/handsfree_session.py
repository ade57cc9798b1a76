"""One tab's hands-free session: its endpointer, its conversation and its turns, in the order spoken.

The tab's microphone audio is fed to the session's `Endpointer`; when a turn ends, the turn
starts at once on the service as a streamed spoken turn (the same as push-to-talk), so
recognition runs while the page asks for the turn's updates (`claim`). Turns of one tab run one
after another, so they are stored in the order they were spoken. While the answer plays the
microphone is ignored (half-duplex), or, with barge-in, watched for someone interrupting. A turn
is started early, once a pause is HANDSFREE_SPECULATE_S long (its recognition overlaps the rest
of the pause), and thrown away unstored if the speech goes on. Its words, once recognised, decide
how long that pause must last (voiceqna.turn_end: short after a finished sentence, long after an
unfinished one). The service stores a hands-free turn only once the page says its answer was heard (or cut short by a barge-in: then only what
was heard, marked). Ending a session (`end`) never loses a turn: a running turn is left to
finish and is stored whole, and turns not yet started are run to their end, in order.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from voiceqna import audio, turn_end
from voiceqna.config import HandsFreeOptions
from voiceqna.endpointing import Endpointer, SpeechStarted, State, TurnEnded
from voiceqna.errors import InvalidInput, VoiceQnAError
from voiceqna.ports import TurnEvents, VoiceChat

logger = logging.getLogger(__name__)

MAX_CHUNK_S = 10.0
"""Audio one request may carry (a tab that fell behind sends what it buffered: ~0.1-0.5 s)."""
CLAIM_WAIT_S = 300.0
"""How long the page's request for a turn waits for the turns before it to finish."""
HOLD_S = 120.0
"""A turn's answer is stored once the page has played it (or cut it short, or gone away), at
most this long after it was spoken: a barge-in then stores only what was heard."""
UNCLAIMED_S = 60.0
"""A started turn that the page has not asked for in this long is let go (still stored whole)."""
GONE = "gone"
"""Reply.error when the session no longer exists: the tab opens a new one."""


def text_only(speak: bool) -> dict:
    """The keyword that asks the service for a turn without speech (none: as before)."""
    return {} if speak else {"speak": False}


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


@dataclass
class TurnRules:
    """What every session of one registry shares: where turns start, and how."""

    service: VoiceChat
    clock: Callable[[], float]
    hold_s: float
    """Passed to the service's stream_audio: the turn is stored once heard (HOLD_S)."""
    speculate_s: float
    """HANDSFREE_SPECULATE_S, or 0 where the service's turns cannot be thrown away."""
    options: HandsFreeOptions = field(default_factory=HandsFreeOptions)
    """The waits the words of a pause choose (HANDSFREE_FINISHED_WAIT_S, …)."""

    @property
    def read_words(self) -> bool:
        """HANDSFREE_READ_WORDS, where turns start early: the early turn's words decide how long
        its pause must last."""
        return self.options.read_words and self.speculate_s > 0
    speculated: int = 0
    """Turns started early, during a pause."""
    adopted: int = 0
    """Of those, the ones that became the turn (the rest were thrown away)."""


class HandsFreeSession:
    """One tab's hands-free state. Thread-safe: the tab's requests come from many threads."""

    def __init__(self, token: str, conversation_id: str, endpointer: Endpointer, rules: TurnRules,
                 tab: str = "") -> None:
        self.token = token
        self.tab = tab
        """The tab's Gradio session hash ("" if unknown)."""
        self.conversation_id = conversation_id
        self.endpointer = endpointer
        self.rules = rules
        self.last_seen = rules.clock()
        self.lock = threading.RLock()
        self.turns: "OrderedDict[str, HandsFreeTurn]" = OrderedDict()
        """Turns not yet over, in the order they were spoken; the first may be running."""
        self.barged_in = False
        """A barge-in was reported for the answer now playing (reported once)."""
        self.early: Optional[HandsFreeTurn] = None
        """A turn started during a pause (HANDSFREE_SPECULATE_S), before the endpointer ended it:
        it becomes the turn if the pause ends the turn, and is thrown away if the speech goes on."""
        self.closed = False
        self.speak = True
        """False: the tab speaks the answers itself (its browser voice); its turns are text only."""

    def set_conversation(self, conversation_id: str) -> None:
        """The tab now shows another conversation: the turns that start from now on go there."""
        if conversation_id:
            with self.lock:
                self.conversation_id = conversation_id

    # --- the microphone ---

    def feed(self, samples: np.ndarray, playing: bool, barge_in: bool, speak: bool = True) -> Reply:
        """The tab's next audio (16 kHz mono float32); `playing`: the answer was playing while it
        was heard; `barge_in`: speech during the answer interrupts it (else it is ignored);
        `speak`: False when the tab speaks the answers itself (turns started from now: text only)."""
        if samples.size > MAX_CHUNK_S * audio.SAMPLE_RATE:
            return Reply(self.endpointer.state.value,
                         error=f"Too much audio at once ({samples.size / audio.SAMPLE_RATE:.1f} s): send at most "
                               f"{MAX_CHUNK_S:g} s per request.")
        with self.lock:
            if self.closed:
                return Reply(State.LISTENING.value, error=GONE)
            self.last_seen = self.rules.clock()
            self.speak = speak
            barge = self._playback(playing, barge_in)
            started, turns = False, []
            for event in self.endpointer.feed(samples):
                if isinstance(event, SpeechStarted):
                    started = True
                    if event.barge_in:
                        barge = self._barge_in() or barge
                elif isinstance(event, TurnEnded):
                    turns.append(self._turn_ended(event))
            self._speculate()
            turns += self._read_words()
            self._let_go_of_unclaimed()
            return Reply(self._shown_state(), started, barge, tuple(turns))

    def _playback(self, playing: bool, barge_in: bool) -> bool:
        """Follow the page's player: mute (or watch for barge-in) while it plays. True when the
        answer has started while someone was already talking and barge-in is on: that is a
        barge-in too (they keep the floor; the answer stops)."""
        endpointer = self.endpointer
        if not playing:
            self.barged_in = False
            if endpointer.state is State.PLAYBACK:
                endpointer.stop_playback()
            return False
        if endpointer.state is State.SPEECH and barge_in:
            return self._barge_in()
        if endpointer.state is not State.PLAYBACK and not self.barged_in:
            endpointer.start_playback(barge_in=barge_in)  # half-duplex drops a turn in progress
        elif endpointer.state is State.PLAYBACK and endpointer.barge_in != barge_in:
            endpointer.start_playback(barge_in=barge_in)  # the barge-in switch changed mid-answer
        return False

    def _barge_in(self) -> bool:
        """Report a barge-in once per answer."""
        if self.barged_in:
            return False
        self.barged_in = True
        return True

    def _speculate(self) -> None:
        """Start the turn early once a pause is `speculate_s` long and nothing else runs (its
        recognition then overlaps the rest of the pause); throw it away if the speech goes on."""
        speculate_s, endpointer, early = self.rules.speculate_s, self.endpointer, self.early
        pause = endpointer.preview() if speculate_s and endpointer.pause_s >= speculate_s else None
        if early is not None and (pause is None or pause.end_s != early.ended.end_s):
            self._drop_early()  # the speech went on (or the answer began to play)
        if pause is None or self.early is not None or self.turns:
            return
        turn = HandsFreeTurn(uuid.uuid4().hex, audio.encode_wav(pause.audio), pause)
        self.early = turn
        self._start(turn)
        self.rules.speculated += 1
        if self.rules.read_words:  # until the words are known, the pause may last up to the longest wait
            endpointer.wait_for(self.rules.options.unfinished_wait_s)

    def _read_words(self) -> list[str]:
        """Once the early turn's words are known, they decide how long its pause must last; the
        turn ends now if the pause is that long already (its id, in a list)."""
        early = self.early
        if not self.rules.read_words or early is None or early.verdict is not None:
            return []
        text = "" if early.error is not None or early.stream is None else early.stream.transcript
        if text is None:
            return []  # still being recognised
        pause = early.ended
        early.verdict = turn_end.decide(text, pause.end_s - pause.start_s, self.rules.options)
        logger.info("Hands-free pause after %.1f s of speech: %s (%s), wait %.2f s", pause.end_s - pause.start_s,
                    early.verdict.kind, early.verdict.reason, early.verdict.wait_s)
        ended = self.endpointer.wait_for(early.verdict.wait_s)
        return [self._turn_ended(ended)] if ended is not None else []

    def _shown_state(self) -> str:
        """The endpointer's state, except listening (듣는 중) while a pause waits for the rest of an
        unfinished sentence: the page is listening then, not hearing speech."""
        early, state = self.early, self.endpointer.state
        if state is State.SPEECH and early is not None and early.verdict is not None \
                and early.verdict.kind == turn_end.UNFINISHED:
            return State.LISTENING.value
        return state.value

    def _drop_early(self) -> None:
        early, self.early = self.early, None
        _cancel(early)

    def _turn_ended(self, ended: TurnEnded) -> str:
        early, self.early = self.early, None
        if early is not None and early.ended.end_s == ended.end_s and not self.turns:
            logger.info("Hands-free turn %s: %.1f s of speech (%s), started %.2f s early", early.id[:8],
                        ended.end_s - ended.start_s, ended.reason, ended.detected_s - early.ended.detected_s)
            early.ended = ended  # the pause it was started in has ended the turn: it is the turn
            self.turns[early.id] = early
            self.rules.adopted += 1
            return early.id
        _cancel(early)
        turn = HandsFreeTurn(uuid.uuid4().hex, audio.encode_wav(ended.audio), ended)
        self.turns[turn.id] = turn
        logger.info("Hands-free turn %s: %.1f s of speech (%s)", turn.id[:8], ended.end_s - ended.start_s,
                    ended.reason)
        self._start_next()
        return turn.id

    # --- its turns, one at a time ---

    def _start_next(self) -> None:
        """Start the first turn that is not over, unless it runs already (one at a time)."""
        turn = next(iter(self.turns.values()), None)
        if turn is not None and not turn.started.is_set():
            self._start(turn)

    def _start(self, turn: HandsFreeTurn) -> None:
        turn.conversation_id = self.conversation_id
        turn.started_at = self.rules.clock()
        try:
            turn.stream = self.rules.service.stream_audio(turn.conversation_id, turn.wav, hold_s=self.rules.hold_s,
                                                          **text_only(self.speak))
        except Exception as exc:  # refused before it started: the page shows why
            if not isinstance(exc, VoiceQnAError):
                logger.exception("Hands-free turn could not start")
            turn.error = exc
        turn.started.set()
        if self.closed:
            self._abandon(turn)

    def _let_go_of_unclaimed(self) -> None:
        """A turn the page never asked for (its request was lost) must not hold up the next."""
        for turn in list(self.turns.values()):
            if turn.started.is_set() and not turn.claimed and self.rules.clock() - turn.started_at > UNCLAIMED_S:
                logger.warning("Hands-free turn %s was never shown; it is stored whole", turn.id[:8])
                self._abandon(turn)

    def _abandon(self, turn: HandsFreeTurn) -> None:
        """Nobody will read this turn: it finishes on its own (stored whole); the next may start."""
        if turn.stream is not None:
            turn.stream.close()
        self._over(turn)

    def _over(self, turn: HandsFreeTurn) -> None:
        """Its events have all been read, or nobody will read them: the next turn may start."""
        self.turns.pop(turn.id, None)
        if not self.closed:
            self._start_next()

    # --- the page's request for a turn ---

    def claim(self, turn_id: str, wait_s: float = CLAIM_WAIT_S) -> HandsFreeTurn:
        """The turn, once it has started (after the turns before it are over). The caller reads
        its stream, then calls `finished`. InvalidInput for a turn this session does not have."""
        with self.lock:
            turn = self.turns.get(str(turn_id))
            if turn is None or turn.claimed:
                raise InvalidInput("This hands-free turn is unknown or already shown: switch hands-free off and on.")
            turn.claimed = True
        if not turn.started.wait(wait_s):
            with self.lock:
                self._over(turn)
            raise InvalidInput("The turns before this one did not finish in time: ask again.")
        return turn

    def finished(self, turn_id: str) -> None:
        """The page has read the turn to its end (or stopped reading): the next turn may start."""
        with self.lock:
            turn = self.turns.get(str(turn_id))
            if turn is not None:
                if turn.stream is not None and not turn.stream.finished:
                    turn.stream.close()
                self._over(turn)

    # --- the end ---

    def end(self) -> None:
        """No turn is lost: the running one finishes and is stored whole; the ones waiting run
        after it, in order, on a thread of their own, each read by nobody."""
        with self.lock:
            self.closed = True
            self._drop_early()
            turns = list(self.turns.values())
            self.turns.clear()
        running = [t for t in turns if t.started.is_set()]
        waiting = [t for t in turns if not t.started.is_set()]
        for turn in running:
            if turn.stream is not None and not turn.claimed:
                turn.stream.close()
            elif turn.stream is not None:
                turn.stream.heard()  # nobody will say it was heard: store it whole now; its reader closes it
        if waiting:
            threading.Thread(target=self._run_left_over, args=(running, waiting), name="handsfree-left-over",
                             daemon=True).start()

    def _run_left_over(self, running: list[HandsFreeTurn], waiting: list[HandsFreeTurn]) -> None:
        for turn in running:
            if turn.stream is not None:
                turn.stream.wait()
        for turn in waiting:
            self._start(turn)
            if turn.stream is not None:
                turn.stream.wait()
        logger.info("Hands-free: %d turn(s) left when the tab went away were stored", len(waiting))


def _cancel(turn: Optional[HandsFreeTurn]) -> None:
    """Throw away a turn started early: nothing of it is stored."""
    if turn is not None and turn.stream is not None:
        turn.stream.cancel()
