"""Microphone-like test streams: real clips trimmed to their speech, joined by pauses of the
room's own background noise (for the hands-free endpointer's tests and benchmark)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from voiceqna.audio import SAMPLE_RATE

SPAN_THRESHOLD = 0.35
"""Silero probability that marks a clip's speech when trimming it (the recognizer's
WHISPER_VAD_THRESHOLD: at 0.5 Silero misses the first 2.6 s of one loud test recording)."""
FRAME = 512
LEAD_IN_S = 0.1
"""Audio a Recording keeps from before where Silero hears speech start: Silero decides per 32 ms
window, and a clip cut exactly there loses the onset of its first consonant (Whisper then drops
the first word of some clips: 집에, 면접에서)."""


def speech_spans(samples: np.ndarray, threshold: float = SPAN_THRESHOLD) -> list[tuple[int, int]]:
    """Where Silero (offline, whole clip at once) hears speech: (start, end) sample indices, no padding."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(threshold=threshold, min_silence_duration_ms=100, speech_pad_ms=0)
    return [(t["start"], t["end"]) for t in get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)]


def longest_pause_s(samples: np.ndarray) -> float:
    """The longest pause inside the clip's speech in seconds, as Silero (offline) hears it at
    0.5 or at 0.35, whichever is longer; 0 when the clip is one stretch of speech."""
    longest = 0
    for threshold in (0.5, SPAN_THRESHOLD):
        spans = speech_spans(samples, threshold)
        longest = max([longest] + [b[0] - a[1] for a, b in zip(spans, spans[1:])])
    return longest / SAMPLE_RATE


def level_db(samples: np.ndarray) -> float:
    """Speech level: the median dBFS of the louder half of the 32 ms frames."""
    frames = samples[: samples.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    db = 10 * np.log10((frames ** 2).mean(axis=1) + 1e-10)
    return float(np.median(db[db >= np.median(db)]))


@dataclass(frozen=True)
class Recording:
    """A clip trimmed to its speech, and what its room sounds like without it."""

    audio: np.ndarray = field(repr=False)
    """The clip from LEAD_IN_S before where Silero (offline, at SPAN_THRESHOLD) hears speech start
    to where it ends. The recordings are cut at the end of speech (for 25 of the 30 that is the
    file's end); most have 0.05–0.4 s before it."""
    onset: int
    """Where the speech starts in `audio` (samples)."""
    background: np.ndarray = field(repr=False)
    """Magnitude spectrum of the clip's quietest 10 % of 32 ms frames."""
    background_rms: float

    @classmethod
    def of(cls, samples: np.ndarray) -> "Recording":
        spans = speech_spans(samples)
        start, end = (spans[0][0], spans[-1][1]) if spans else (0, samples.size)
        begin = max(0, start - int(LEAD_IN_S * SAMPLE_RATE))
        frames = samples[: samples.size // FRAME * FRAME].reshape(-1, FRAME)
        power = (frames.astype(np.float64) ** 2).mean(axis=1)
        quiet = power <= np.quantile(power, 0.1)
        spectrum = np.sqrt((np.abs(np.fft.rfft(frames[quiet] * np.hanning(FRAME), axis=1)) ** 2).mean(axis=0))
        return cls(samples[begin:end].astype(np.float32), start - begin, spectrum, float(np.sqrt(power[quiet].mean())))

    @property
    def speech(self) -> np.ndarray:
        """The speech alone, without the lead-in."""
        return self.audio[self.onset:]

    def room_tone(self, seconds: float, seed: int = 0, gain_db: float = 0.0) -> np.ndarray:
        """`seconds` of stationary noise with the spectrum and level of the room's background
        (`gain_db` louder): the room it was recorded in, for as long as needed."""
        size = int(round(seconds * SAMPLE_RATE))
        if size == 0:
            return np.zeros(0, dtype=np.float32)
        bins = np.fft.rfft(np.random.default_rng(seed).standard_normal(size))
        bins *= np.interp(np.linspace(0, 1, bins.size), np.linspace(0, 1, self.background.size), self.background)
        noise = np.fft.irfft(bins, n=size)
        scale = self.background_rms * 10 ** (gain_db / 20) / max(float(np.sqrt((noise ** 2).mean())), 1e-12)
        return (noise * scale).astype(np.float32)


@dataclass(frozen=True)
class Stream:
    """Audio as a microphone would hear it, with where each clip's speech is."""

    audio: np.ndarray = field(repr=False)
    speech: list[tuple[float, float]]
    """(start, end) seconds of each clip's speech in `audio`."""

    @property
    def seconds(self) -> float:
        return self.audio.size / SAMPLE_RATE


def join(recordings: Sequence[Recording], pauses_s: Sequence[float], lead_s: float = 1.0, tail_s: float = 3.0,
         seed: int = 0, snr_db: float | None = None) -> Stream:
    """The recordings, `pauses_s[i]` seconds from the end of recording i's speech to the start of
    recording i + 1's (room noise, then the next one's lead-in), `lead_s` before the first speech
    and `tail_s` after the last. The room noise is the background of the recording before it (the
    lead: of the first), so the room never goes silent. With `snr_db`, the first recording's
    background is also added over the whole stream, that many dB below the level of the speech
    (`level_db`): a noisier room."""
    if len(pauses_s) != len(recordings) - 1:
        raise ValueError(f"{len(recordings)} recordings need {len(recordings) - 1} pauses, not {len(pauses_s)}")
    gaps = [lead_s, *pauses_s]
    parts, speech, position = [], [], 0
    for i, recording in enumerate(recordings):
        noise = recordings[max(i - 1, 0)].room_tone(max(0.0, gaps[i] - recording.onset / SAMPLE_RATE), seed + i)
        start = position + noise.size + recording.onset
        speech.append((start / SAMPLE_RATE, (position + noise.size + recording.audio.size) / SAMPLE_RATE))
        parts += [noise, recording.audio]
        position += noise.size + recording.audio.size
    parts.append(recordings[-1].room_tone(tail_s, seed + len(recordings)))
    audio = np.concatenate(parts)
    if snr_db is not None:
        first = recordings[0]
        gain = level_db(first.speech) - snr_db - 20 * np.log10(first.background_rms + 1e-12)
        audio = audio + first.room_tone(audio.size / SAMPLE_RATE, seed + 1000, gain)
    return Stream(audio.astype(np.float32), speech)
