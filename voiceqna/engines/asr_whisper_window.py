"""Short-window Whisper: encode a window shorter than 30 s, decode with timestamps, one fallback.

faster-whisper always encodes a 30 s window (`generate_segments` pads the features to 3000
frames), so a 3 s question costs as much encoder time as 30 s of speech. The encoder of
CTranslate2 accepts fewer frames. What keeps accuracy is padding the *audio* with silence
to a window of at least ~10 s before computing the log-mel features (Whisper was trained on
silence-padded audio); a window fitted tightly to the speech, or zero-padded features, do
not (see README "Speed"). `voiceqna.engines.asr_whisper` cuts longer speech at pauses into pieces that fit.

Each sentence is heard once. Decoded without timestamps, nothing told Whisper where in the
silence-padded window the speech ends: on short clips it sometimes said the sentence again,
looped on a word, or stopped early. So the decoder writes timestamp tokens, the text of
segments that start after the end of speech (which the VAD knows) is dropped, and a repeat
at the very end that is left is cut (`cut_repeated_tail`). Measured in README "Measuring
accuracy" (benchmarks/accuracy.py; benchmarks/results/accuracy.json keeps the variants that lost).

Nothing here mutates the shared `WhisperModel`: this module has its own feature extractor
and tokenizer and only calls the thread-safe `encode` / `generate` of the CTranslate2 model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.feature_extractor import FeatureExtractor
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

from voiceqna.audio import SAMPLE_RATE
from voiceqna.textnorm import compact

MAX_WINDOW_S = 30
"""Whisper's own window."""
MARGIN_S = 1.0
"""Silence kept after the speech inside the window."""
MAX_SPEECH_S = 28
"""Longest piece of speech decoded in one window (longer speech is cut at pauses)."""
TOKENS_PER_SPEECH_S = 12
"""Cap on generated tokens per second of speech (read Korean measures 4–6): a repetition
loop stops after a second of text instead of 448 tokens."""
MIN_NEW_TOKENS = 16
BEST_OF = 5
"""Sampled hypotheses in the fallback decode (faster-whisper's default)."""


@dataclass(frozen=True)
class Decoded:
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    window_s: int


@dataclass(frozen=True)
class Thresholds:
    """Whisper's own quality rules (the defaults of openai/whisper and faster-whisper)."""

    no_speech: float = 0.6
    log_prob: float = -1.0
    compression_ratio: float = 2.4

    def is_silence(self, decoded: Decoded) -> bool:
        """Whisper's rule: probably no speech and not confidently decoded. Also no speech: a
        loop ('오오오오오오') where Whisper thinks there is probably none; with timestamps, whose
        tokens are confident, a loop on a chirp scored above the log-probability threshold."""
        if decoded.no_speech_prob <= self.no_speech:
            return False
        return decoded.avg_logprob < self.log_prob or bool(_LOOP.search(decoded.text))

    def needs_fallback(self, decoded: Decoded) -> bool:
        return decoded.compression_ratio > self.compression_ratio or decoded.avg_logprob < self.log_prob


class WindowDecoder:
    """Encode speech padded with silence to a short window; decode it with timestamps and keep
    the text said before the speech ends."""

    def __init__(self, model: WhisperModel, min_window_s: int, beam_size: int = 1, language: str = "ko") -> None:
        self.model = model.model  # the ctranslate2.models.Whisper; encode/generate are thread-safe
        self.min_window_s = int(min_window_s)
        self.beam_size = beam_size
        # Our own extractor: faster-whisper's is mutated by transcribe(chunk_length=...).
        self.features = FeatureExtractor(**model.feat_kwargs)
        self.tokenizer = Tokenizer(model.hf_tokenizer, self.model.is_multilingual, task="transcribe", language=language)
        self.time_per_token = model.time_precision  # timestamp tokens count 20 ms steps from the window's start
        self.prompt = list(self.tokenizer.sot_sequence)
        self.suppress = list(get_suppressed_tokens(self.tokenizer, [-1]))
        self.to_cpu = self.model.device == "cuda" and len(self.model.device_index) > 1

    def window_for(self, speech_s: float) -> int:
        """Whole seconds: at least `min_window_s` and the speech plus a margin, at most 30."""
        if speech_s > MAX_SPEECH_S:
            raise ValueError(f"{speech_s:.1f} s of speech do not fit one window: cut it at pauses first")
        return min(MAX_WINDOW_S, max(self.min_window_s, math.ceil(speech_s + MARGIN_S)))

    def log_mel(self, speech: np.ndarray, window_s: int) -> np.ndarray:
        """Features [1, n_mels, 100 * window_s] of the speech padded with silence to the window."""
        padded = np.zeros(window_s * SAMPLE_RATE, dtype=np.float32)
        padded[: speech.size] = speech
        frames = window_s * SAMPLE_RATE // self.features.hop_length
        return np.ascontiguousarray(self.features(padded)[np.newaxis, :, :frames])

    def encode(self, speech: np.ndarray, window_s: int) -> ctranslate2.StorageView:
        features = ctranslate2.StorageView.from_array(self.log_mel(speech, window_s))
        return self.model.encode(features, to_cpu=self.to_cpu)

    def decode(self, encoded: ctranslate2.StorageView, speech_s: float, temperature: float, window_s: int,
               speech_end_s: float | None = None) -> Decoded:
        max_new = min(448 - len(self.prompt), MIN_NEW_TOKENS + math.ceil(TOKENS_PER_SPEECH_S * speech_s))
        if temperature > 0:
            sampling = dict(beam_size=1, num_hypotheses=BEST_OF, sampling_topk=0, sampling_temperature=temperature)
        else:
            sampling = dict(beam_size=self.beam_size)
        result = self.model.generate(
            encoded,
            [self.prompt],
            max_length=len(self.prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self.suppress,
            **sampling,
        )[0]
        tokens = result.sequences_ids[0]
        text = self.tokenizer.decode(self.spoken_part(tokens, speech_s if speech_end_s is None else speech_end_s))
        text = cut_repeated_tail(text.strip())
        return Decoded(
            text=text,
            avg_logprob=result.scores[0] * len(tokens) / (len(tokens) + 1),
            no_speech_prob=result.no_speech_prob,
            compression_ratio=get_compression_ratio(text),
            temperature=temperature,
            window_s=window_s,
        )

    def spoken_part(self, tokens: list[int], speech_s: float) -> list[int]:
        """The text tokens of the segments that start before the speech ends: what the decoder
        writes past the end of speech, over the silence that pads the window, was never said."""
        first = self.tokenizer.timestamp_begin
        kept, start = [], 0.0
        for token in tokens:
            if token >= first:
                start = (token - first) * self.time_per_token
            elif start < speech_s:
                kept.append(token)
        return kept

    def transcribe(self, speech: np.ndarray, temperatures: tuple[float, ...], thresholds: Thresholds,
                   speech_end_s: float | None = None) -> Decoded:
        """Beam search first; one fallback at the next temperature when the text looks degenerate.

        `speech` is at most MAX_SPEECH_S long. Returns an empty text when Whisper judges the
        window to be silence.
        """
        speech_s = speech.size / SAMPLE_RATE
        window_s = self.window_for(speech_s)
        encoded = self.encode(speech, window_s)
        first = self.decode(encoded, speech_s, temperatures[0], window_s, speech_end_s)
        if thresholds.is_silence(first):
            return _silent(first)
        if len(temperatures) < 2 or not thresholds.needs_fallback(first):
            return first
        second = self.decode(encoded, speech_s, temperatures[1], window_s, speech_end_s)
        # Like faster-whisper: prefer results that are not repetitive, then the likelier one.
        candidates = [d for d in (first, second) if d.compression_ratio <= thresholds.compression_ratio]
        best = max(candidates or [first, second], key=lambda d: d.avg_logprob)
        if thresholds.is_silence(best):
            return _silent(best)
        if not candidates:  # both looped: keep one turn of the loop rather than a page of it
            best = replace(best, text=cut_loops(best.text))
        return best


def _silent(decoded: Decoded) -> Decoded:
    return Decoded("", decoded.avg_logprob, decoded.no_speech_prob, 0.0, decoded.temperature, decoded.window_s)


_LOOP = re.compile(r"(\S.{0,24}?)(?:\s*\1){3,}")


def cut_loops(text: str) -> str:
    """'가 Père Père Père Père' -> '가 Père': a phrase repeated four times or more is kept once."""
    return _LOOP.sub(r"\1", text)


def cut_repeated_tail(text: str, min_syllables: int = 4) -> str:
    """Drop the words at the end that say again what was just said (spaces and punctuation
    ignored): 'A B A B A' -> 'A B' when the repeat is `min_syllables` or more and follows
    right on what it repeats, or starts the text over and is twice that long (a sentence
    followed by its first half). 'A 정말 A' with a short A is left alone."""
    words = text.split()
    squeezed = [compact(w) for w in words]
    joined = "".join(squeezed)
    start = 0
    for k in range(1, len(words)):
        start += len(squeezed[k - 1])
        tail = joined[start:]
        if len(tail) < min_syllables:
            break
        back_to_back = 0 <= joined.find(tail, max(0, start - len(tail))) < start
        if back_to_back or (joined.startswith(tail) and len(tail) >= 2 * min_syllables):
            return " ".join(words[:k]).rstrip(",")
    return text
