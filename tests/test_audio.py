import io
import subprocess
import wave

import numpy as np
import pytest

from voiceqna import audio
from voiceqna.errors import AudioTooLarge, BadAudio, EmptyAudio


def tone(seconds: float, rate: int = 16_000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ffmpeg_convert(source: bytes, args: list[str], suffix: str, tmp_path) -> bytes:
    src, dst = tmp_path / "in.wav", tmp_path / f"out{suffix}"
    src.write_bytes(source)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(src), *args, str(dst)], check=True)
    return dst.read_bytes()


def stereo_wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        pcm = (np.repeat(samples[:, None], 2, axis=1) * 32767).astype("<i2")
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def test_wav_round_trip_keeps_duration_and_rate():
    data = audio.encode_wav(tone(1.5))
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
        assert wav.getnframes() == 24_000
    samples = audio.decode(data)
    assert samples.dtype == np.float32
    assert samples.size == pytest.approx(24_000, abs=50)


def test_stereo_44k_is_resampled_to_16k_mono():
    samples = audio.decode(stereo_wav(tone(2.0, rate=44_100), 44_100))
    assert samples.ndim == 1
    assert samples.size == pytest.approx(32_000, abs=200)
    assert 0.3 < np.abs(samples).max() <= 1.0


@pytest.mark.parametrize(
    "suffix, args",
    [
        (".webm", ["-c:a", "libopus"]),
        (".ogg", ["-c:a", "libopus"]),
        (".mp3", ["-c:a", "libmp3lame"]),
        (".m4a", ["-c:a", "aac"]),
        (".flac", []),
    ],
)
def test_browser_and_phone_formats_decode(suffix, args, tmp_path):
    encoded = ffmpeg_convert(stereo_wav(tone(2.0, 48_000), 48_000), ["-ar", "48000", *args], suffix, tmp_path)
    samples = audio.decode(encoded)
    assert samples.size / audio.SAMPLE_RATE == pytest.approx(2.0, abs=0.1)


def test_empty_bytes():
    with pytest.raises(EmptyAudio, match="empty"):
        audio.decode(b"")


def test_wav_with_no_samples():
    with pytest.raises(EmptyAudio):
        audio.decode(audio.encode_wav(np.zeros(0, np.float32)))


@pytest.mark.parametrize("data", [b"hello, this is text", b"%PDF-1.4 " + bytes(range(256)) * 20, b"\x00" * 4096])
def test_non_audio_bytes_are_rejected_with_the_formats_to_use(data):
    with pytest.raises(BadAudio, match="WAV"):
        audio.decode(data)


def test_truncated_wav_keeps_what_decodes():
    data = audio.encode_wav(tone(2.0))
    samples = audio.decode(data[: len(data) // 2])
    assert 0.9 < samples.size / audio.SAMPLE_RATE < 1.1


def test_too_long_audio_stops_early():
    with pytest.raises(AudioTooLarge, match="limit of 5 s"):
        audio.decode(audio.encode_wav(tone(8.0)), max_seconds=5)


def test_joined_wavs_play_one_after_another():
    first, second = audio.encode_wav(tone(1.0)), audio.encode_wav(tone(0.5, freq=880))
    joined = audio.join_wavs([first, b"", second])
    assert audio.decode(joined).size == 24_000
    assert audio.join_wavs([first]) == first and audio.join_wavs([]) == b""


def test_joining_wavs_of_different_rates_decodes_them_to_16k():
    joined = audio.join_wavs([audio.encode_wav(tone(1.0), 16_000), audio.encode_wav(tone(1.0, rate=24_000), 24_000)])
    with wave.open(io.BytesIO(joined)) as wav:
        assert wav.getframerate() == 16_000
    assert audio.decode(joined).size == pytest.approx(32_000, abs=100)
