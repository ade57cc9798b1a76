"""Find where spoken turns start and end in a live microphone stream (Silero VAD, incremental).

Feed an `Endpointer` 16 kHz mono float32 audio as it arrives, in chunks of any size; it answers
with events: `SpeechStarted` when someone has spoken for `min_speech_s`, `TurnEnded` (the audio
of the utterance, padded) after `silence_s` of silence (or the wait `wait_for` sets for the
pause in progress) or at `max_turn_s`. Its `state` is what
the page shows: listening, hearing speech, or ignoring the microphone while the answer plays.

The model is the Silero VAD that ships inside faster-whisper (`silero_vad_v6.onnx`), through the
one ONNX session faster-whisper's own VAD filter uses (one per process, shared by every stream).
It scores 32 ms windows (512 samples, each with the 64 samples before it as context) and carries
an LSTM state from window to window; an `Endpointer` keeps that state, the context and the
unscored tail of the last chunk, so scoring a stream chunk by chunk gives the same speech
probabilities as scoring it whole (`faster_whisper.vad.SileroVADModel`) and the same turns
whatever the chunk size.

Half-duplex: between `start_playback()` and `stop_playback()` the microphone is ignored (not
even scored), so the page never answers itself. With `start_playback(barge_in=True)` it is
scored with the stricter `barge_in_threshold` and `barge_in_min_speech_s`; speech then ends the
playback state at once with `SpeechStarted(barge_in=True)`, and that speech becomes the next turn.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from voiceqna.audio import SAMPLE_RATE
from voiceqna.config import HandsFreeOptions

logger = logging.getLogger(__name__)

WINDOW = 512
"""Samples Silero scores at once (32 ms at 16 kHz)."""
CONTEXT = 64
"""Samples of the window before that go with each window."""
STATE_SHAPE = (1, 1, 128)
"""Silero's LSTM state (h and c)."""


class State(str, enum.Enum):
    """What the endpointer is doing; the page shows it."""

    LISTENING = "listening"
    """Waiting for speech (듣는 중)."""
    SPEECH = "speech"
    """A turn has started and not ended (말씀 중)."""
    PLAYBACK = "playback"
    """The answer plays: the microphone is ignored (half-duplex) or only watched for barge-in."""


@dataclass(frozen=True)
class SpeechStarted:
    """Someone has spoken for `min_speech_s` (`barge_in_min_speech_s` during playback)."""

    start_s: float
    """Where the speech starts, in seconds of the stream since the endpointer was made."""
    detected_s: float
    """Where in the stream it was recognised as speech (end of the window that decided)."""
    barge_in: bool = False
    """True when it interrupts the answer: stop playing it."""


@dataclass(frozen=True)
class TurnEnded:
    """A finished turn: the audio to recognise."""

    audio: np.ndarray = field(repr=False)
    """16 kHz mono float32, from `pad_s` before the speech to `pad_s` after it (as far as the
    stream holds audio there)."""
    audio_start_s: float
    """Where `audio` starts in the stream."""
    start_s: float
    """Where the speech starts in the stream."""
    end_s: float
    """Where the speech ends: the first silent window, or the cut at `max_turn_s`."""
    detected_s: float
    """Where in the stream the end was decided (`end_s` + `silence_s`, or the wait the words
    decided, for a pause)."""
    reason: str
    """"silence", "max_length" or "end_of_stream" (`flush`)."""

    @property
    def seconds(self) -> float:
        return self.audio.size / SAMPLE_RATE


Event = Union[SpeechStarted, TurnEnded]


def silero_session():
    """faster-whisper's Silero VAD ONNX session: loaded once per process, shared with its VAD filter."""
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError:
        raise RuntimeError("Hands-free needs faster-whisper: pip install -r requirements.txt") from None
    return get_vad_model().session


class SpeechScorer:
    """Silero's speech probability for each 32 ms window of one stream, fed in chunks of any size."""

    def __init__(self, session=None) -> None:
        self.session = session or silero_session()
        self.reset()

    def reset(self) -> None:
        """Forget the stream: fresh LSTM state, no context, no unscored samples."""
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The speech probability and the level (dBFS) of each window these samples complete
        (possibly none)."""
        audio = np.concatenate((self._pending, samples)) if self._pending.size else samples
        count = audio.size // WINDOW
        self._pending = audio[count * WINDOW:].copy()
        if count == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        windows = audio[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate((self._context[None, :], windows[:-1, -CONTEXT:]))
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate((contexts, windows), axis=1)
        probs, self._h, self._c = self.session.run(None, {"input": batch, "h": self._h, "c": self._c})
        levels = 10 * np.log10(np.mean(np.square(windows, dtype=np.float64), axis=1) + 1e-10)
        return probs.reshape(-1), levels.astype(np.float32)


class _Tape:
    """The recent audio of a stream, addressed by sample index since the stream began."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.chunks: list[np.ndarray] = []
        self.size = 0

    @property
    def end(self) -> int:
        return self.start + self.size

    def append(self, samples: np.ndarray) -> None:
        self.chunks.append(samples)
        self.size += samples.size

    def drop_before(self, index: int) -> None:
        """Forget the audio before sample `index`."""
        if index <= self.start:
            return
        audio = self.slice(index, self.end)
        self.start, self.chunks, self.size = index, [audio], audio.size

    def slice(self, begin: int, end: int) -> np.ndarray:
        begin, end = max(begin, self.start), min(end, self.end)
        if end <= begin:
            return np.zeros(0, dtype=np.float32)
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0][begin - self.start: end - self.start].copy()


def _samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


class Endpointer:
    """One microphone stream's turn detector. Not thread-safe: one per stream (per browser tab);
    the model session behind it is shared and thread-safe."""

    def __init__(self, options: HandsFreeOptions = HandsFreeOptions(), session=None) -> None:
        problems = options.problems()
        if problems:
            raise ValueError("; ".join(problems))
        self.options = options
        self.scorer = SpeechScorer(session)
        self._fed = 0  # samples fed since the stream began: the stream's clock
        self._scored = 0  # samples scored (whole windows)
        self._tape = _Tape()
        self._state = State.LISTENING
        self._barge_in = False
        self._floor = 0  # audio before this sample was handed out in a turn already
        self.voice_db: float | None = None
        """The speaker's level (median dBFS of the speech windows of the last turn): barge-in's yardstick."""
        self._reset_speech()

    # --- what the page asks ---

    @property
    def state(self) -> State:
        return self._state

    @property
    def barge_in(self) -> bool:
        """True while the answer plays and the microphone is watched for someone interrupting."""
        return self._state is State.PLAYBACK and self._barge_in

    def start_playback(self, barge_in: bool = False) -> None:
        """The answer starts playing. A turn in progress is dropped. Until `stop_playback()`
        the microphone is ignored, or, with `barge_in`, watched for someone interrupting."""
        self._state = State.PLAYBACK
        self._barge_in = barge_in
        self._restart()

    def stop_playback(self) -> None:
        """The answer has finished (or was stopped): listen again, from a fresh model state."""
        if self._state is State.PLAYBACK:
            self._state = State.LISTENING
            self._restart()

    def feed(self, samples: np.ndarray) -> list[Event]:
        """Take the next audio of the stream (16 kHz mono float32, any length); the events it causes."""
        samples = np.asarray(samples)
        if samples.dtype.kind != "f" or samples.ndim != 1:
            raise ValueError(
                f"Feed 16 kHz mono float samples in [-1, 1] as a 1-D array, not {samples.dtype} of shape "
                f"{samples.shape}: divide int16 PCM by 32768 and mix channels down first (voiceqna.audio.decode does both)."
            )
        samples = samples.astype(np.float32, copy=False)
        self._fed += samples.size
        if self._state is State.PLAYBACK and not self._barge_in:
            self._scored = self._fed
            self._tape = _Tape(self._fed)
            return []
        self._tape.append(samples)
        events: list[Event] = []
        for prob, level in zip(*self.scorer(samples)):
            self._scored += WINDOW
            event = self._step(float(prob), float(level))
            if event is not None:
                events.append(event)
        if self._state is not State.SPEECH:  # keep only what a turn that starts soon can need
            keep = _samples(self.options.pad_s + max(self.options.min_speech_s, self.options.barge_in_min_speech_s))
            self._tape.drop_before(self._scored - keep - WINDOW)
        return events

    @property
    def pause_s(self) -> float:
        """Seconds of silence since the speech of the turn in progress paused (0 while speaking,
        listening or playing)."""
        if self._state is not State.SPEECH or self._silence_start is None:
            return 0.0
        return (self._scored - self._silence_start) / SAMPLE_RATE

    def preview(self) -> TurnEnded | None:
        """During a pause: the turn as it would end if the speech does not resume (the same audio
        as its TurnEnded once the pause is `pad_s` long), to start recognising it early. The
        state does not change; None when there is no pause."""
        if self._state is not State.SPEECH or self._silence_start is None:
            return None
        end = self._silence_start
        begin = max(self._turn_start - _samples(self.options.pad_s), self._floor)
        stop = min(end + _samples(self.options.pad_s), self._scored)
        return TurnEnded(audio=self._tape.slice(begin, stop), audio_start_s=max(begin, self._tape.start) / SAMPLE_RATE,
                         start_s=self._turn_start / SAMPLE_RATE, end_s=end / SAMPLE_RATE,
                         detected_s=self._scored / SAMPLE_RATE, reason="preview")

    def wait_for(self, seconds: float) -> TurnEnded | None:
        """The silence the pause in progress needs to end the turn, instead of `silence_s` (the
        words said so far decided it: voiceqna.turn_end); back to `silence_s` once the speech
        resumes. If the pause is that long already, the turn ends now and is returned."""
        if self._state is not State.SPEECH or self._silence_start is None:
            return None
        self._wait = _samples(seconds)
        if self._scored - self._silence_start >= self._wait:
            return self._end_turn(self._silence_start, "silence")
        return None

    def flush(self) -> list[Event]:
        """The stream has ended: the turn in progress, if any, ends here."""
        if self._state is not State.SPEECH:
            return []
        end = self._silence_start if self._silence_start is not None else self._fed
        return [self._end_turn(end, "end_of_stream")]

    # --- the decision, window by window ---

    def _reset_speech(self) -> None:
        self._candidate: int | None = None  # where a run of speech not yet long enough began
        self._turn_start: int | None = None
        self._silence_start: int | None = None
        self._wait: int | None = None  # silence this pause needs (wait_for); None: silence_s
        self._speech_levels: list[float] = []  # levels of the speech windows of the turn in progress

    def _restart(self) -> None:
        """A fresh start at the present moment (playback began or ended)."""
        self.scorer.reset()
        self._scored = self._fed
        self._tape = _Tape(self._fed)
        self._floor = self._fed
        self._reset_speech()

    def _step(self, prob: float, level: float) -> Event | None:
        o = self.options
        window_start, window_end = self._scored - WINDOW, self._scored
        if self._state is State.SPEECH:
            if prob >= o.threshold:
                self._silence_start, self._wait = None, None
                self._speech_levels.append(level)
            elif prob < o.neg_threshold and self._silence_start is None:
                self._silence_start = window_start
            wait = _samples(o.silence_s) if self._wait is None else self._wait
            if self._silence_start is not None and window_end - self._silence_start >= wait:
                return self._end_turn(self._silence_start, "silence")
            if window_end - self._turn_start >= _samples(o.max_turn_s):
                return self._end_turn(window_end, "max_length")
            return None
        barge = self._state is State.PLAYBACK
        if barge and self.voice_db is not None and level < self.voice_db - o.barge_in_margin_db:
            prob = 0.0  # far quieter than the speaker: the answer's echo, not someone interrupting
        threshold = o.barge_in_threshold if barge else o.threshold
        keep_going = threshold - (o.threshold - o.neg_threshold)  # the same hysteresis in both modes
        if self._candidate is None:
            if prob >= threshold:
                self._candidate = window_start
        elif prob < keep_going:
            self._candidate = None
        if self._candidate is None:
            return None
        if window_end - self._candidate < _samples(o.barge_in_min_speech_s if barge else o.min_speech_s):
            return None
        self._state, self._turn_start, self._candidate = State.SPEECH, self._candidate, None
        if barge:
            logger.debug("barge-in at %.2f s", self._turn_start / SAMPLE_RATE)
        return SpeechStarted(self._turn_start / SAMPLE_RATE, window_end / SAMPLE_RATE, barge_in=barge)

    def _end_turn(self, end: int, reason: str) -> TurnEnded:
        pad = _samples(self.options.pad_s)
        begin = max(self._turn_start - pad, self._floor)
        # Up to the last scored window, not the end of the chunk, so the turn is the same whatever the chunk size.
        stop = end if reason == "max_length" else min(end + pad, self._fed if reason == "end_of_stream" else self._scored)
        turn = TurnEnded(
            audio=self._tape.slice(begin, stop),
            audio_start_s=max(begin, self._tape.start) / SAMPLE_RATE,
            start_s=self._turn_start / SAMPLE_RATE,
            end_s=end / SAMPLE_RATE,
            detected_s=self._scored / SAMPLE_RATE,
            reason=reason,
        )
        self._floor = stop
        if self._speech_levels:
            self.voice_db = float(np.median(self._speech_levels))
        self._state = State.LISTENING
        self._reset_speech()
        return turn
