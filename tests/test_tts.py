import io
import wave

import numpy as np
import pytest

from tests.fake_openai import FakeOpenAI
from voiceqna.audio import decode
from voiceqna.evaluation.clips import seconds
from voiceqna.engines.tts_espeak import EspeakSynthesizer
from voiceqna.engines.tts_openai import OpenAISynthesizer


def wav_header(data: bytes) -> tuple[int, int, int]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate()


def test_espeak_speaks_korean_as_16_bit_wav_that_decodes():
    data = EspeakSynthesizer().synthesize("안녕하세요. 반갑습니다.")
    channels, width, rate = wav_header(data)
    assert (channels, width) == (1, 2) and rate > 8000
    samples = decode(data)
    assert np.abs(samples).max() > 0.05, "the answer must not be silent"


def test_duration_fits_the_text():
    tts = EspeakSynthesizer()
    short = seconds(tts.synthesize("네."))
    long = seconds(tts.synthesize("대한민국의 수도는 서울이에요. 경복궁과 남산서울타워, 한강공원을 추천해요."))
    assert 0.2 < short < 2.0
    assert 3.0 < long < 15.0
    assert long > 3 * short


def test_text_that_looks_like_an_option_is_spoken_not_parsed():
    data = EspeakSynthesizer().synthesize("--help 는 옵션이 아니에요")
    assert seconds(data) > 1.0


def test_openai_speech_against_a_fake_server():
    fake = FakeOpenAI()
    try:
        tts = OpenAISynthesizer(api_key="k", model="tts-model", voice="nova", base_url=fake.base_url)
        data = tts.synthesize("안녕하세요")
        assert seconds(data) == pytest.approx(1.0)
        (request,) = fake.requests
        assert request["path"] == "/v1/audio/speech"
        assert (request["model"], request["voice"], request["input"]) == ("tts-model", "nova", "안녕하세요")
        assert request["response_format"] == "wav"
    finally:
        fake.close()
