"""The gate every recognizer runs first: Silero VAD (bundled with faster-whisper, no download)
keeps only the speech, and the phrases Whisper invents on quiet audio are dropped.

Silence and noise must never become text: with no speech found, no recognizer runs at all.
"""

from __future__ import annotations

import numpy as np

from voiceqna.audio import SAMPLE_RATE
from voiceqna.textnorm import compact

HALLUCINATIONS = tuple(
    compact(p)
    for p in (
        "시청해주셔서 감사합니다",
        "시청해 주셔서 감사합니다",
        "구독과 좋아요 부탁드립니다",
        "구독과 좋아요",
        "좋아요와 구독 부탁드립니다",
        "다음 영상에서 만나요",
        "MBC 뉴스 이덕영입니다",
        "자막 제공 및 자막 편집",
        "한글자막 by 한효정",
        "Thank you for watching",
    )
)
"""Subtitle credits and sign-offs Whisper writes for silence or noise (compacted: no spaces, NFKC)."""


def speech_pieces(samples: np.ndarray, threshold: float, max_piece_s: float = float("inf")) -> list[np.ndarray]:
    """What the VAD hears as speech (each part padded by 400 ms), joined into pieces of at most
    `max_piece_s` split at pauses; no pieces when there is no speech."""
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    options = VadOptions(threshold=threshold, max_speech_duration_s=max_piece_s)
    chunks = get_speech_timestamps(samples, options, sampling_rate=SAMPLE_RATE)
    if not chunks:
        return []
    pieces, _ = collect_chunks(samples, chunks, sampling_rate=SAMPLE_RATE, max_duration=max_piece_s)
    return [p.astype(np.float32, copy=False) for p in pieces if p.size]


def speech(samples: np.ndarray, threshold: float) -> np.ndarray:
    """All the speech in `samples`, the silences between removed; empty when there is none."""
    pieces = speech_pieces(samples, threshold)
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def is_hallucination(text: str) -> bool:
    return compact(text) in HALLUCINATIONS


def warm_up() -> None:
    """Load the Silero model (a few MB, bundled) so the first user does not wait for it."""
    speech_pieces(np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32), 0.5)
