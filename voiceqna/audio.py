"""Decode any upload (WAV, WebM/Opus, OGG, MP3, M4A, FLAC; any rate; stereo) to 16 kHz mono
float32; encode and join WAV files."""

from __future__ import annotations

import io
import wave
from typing import Sequence

import av
import numpy as np

from voiceqna.errors import AudioTooLarge, BadAudio, EmptyAudio

SAMPLE_RATE = 16_000
PLAUSIBLE_RATES = (4_000, 384_000)
"""Sample rates a recording can have (Hz). A header outside them is broken or hostile: a 1 Hz
WAV would be upsampled 16,000 times."""


def decode(data: bytes, max_seconds: float | None = None) -> np.ndarray:
    """Return 16 kHz mono float32 samples in [-1, 1].

    Raises EmptyAudio for zero bytes or zero samples, BadAudio for bytes that are not audio,
    AudioTooLarge as soon as the decoded audio passes `max_seconds`.
    """
    if not data:
        raise EmptyAudio("The audio is empty (0 bytes): record or upload a clip first.")
    max_samples = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadAudio("The file has no audio track: send WAV, WebM, OGG, MP3, M4A or FLAC.")
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate
            if rate and not PLAUSIBLE_RATES[0] <= rate <= PLAUSIBLE_RATES[1]:  # 0: not in the header
                raise BadAudio(
                    f"The file claims a sample rate of {rate} Hz, which no recording has: "
                    "send audio recorded at 8–48 kHz (WAV, WebM, OGG, MP3, M4A or FLAC)."
                )
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if max_samples is not None and total > max_samples:
                    raise AudioTooLarge(
                        f"The recording is longer than the limit of {max_seconds:g} s: "
                        "send a shorter clip (or raise MAX_AUDIO_S)."
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (BadAudio, AudioTooLarge):
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError) as exc:
        if not chunks:
            raise BadAudio(
                f"Could not decode the audio ({type(exc).__name__}): send WAV, WebM, OGG, MP3, M4A or FLAC."
            ) from None
        # A truncated file: keep what decoded cleanly.
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if samples.size == 0:
        raise EmptyAudio("The audio holds no sound samples: record or upload a clip with speech.")
    return from_pcm16(samples)


def from_pcm16(samples: np.ndarray) -> np.ndarray:
    """16-bit samples as float32 in [-1, 1)."""
    return samples.astype(np.float32) / 32768.0


def _frames(container: av.container.InputContainer, stream: av.audio.stream.AudioStream):
    """Decoded frames, skipping single corrupt packets rather than failing the whole file."""
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def encode_wav(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV with the sample rate in the header."""
    pcm = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes((pcm * 32767.0).astype("<i2").tobytes())
    return buffer.getvalue()


def join_wavs(parts: Sequence[bytes]) -> bytes:
    """The WAV files one after another as one WAV (b"" for none). When their formats differ,
    all are decoded and the result is 16 kHz mono."""
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return parts[0] if parts else b""
    try:
        frames, formats = [], set()
        for part in parts:
            with wave.open(io.BytesIO(part), "rb") as wav:
                formats.add((wav.getnchannels(), wav.getsampwidth(), wav.getframerate()))
                frames.append(wav.readframes(wav.getnframes()))
    except (wave.Error, EOFError):
        formats = set()  # not all plain PCM WAV: decode them below
    if len(formats) == 1:
        channels, width, rate = formats.pop()
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(width)
            out.setframerate(rate)
            out.writeframes(b"".join(frames))
        return buffer.getvalue()
    return encode_wav(np.concatenate([decode(part) for part in parts]))
