"""Each stage on its own OpenAI-compatible server: recognition (/v1/audio/transcriptions), chat
and speech, every one a FAKE server on loopback (OpenAI's API cannot be reached here), each stage
pointed at a different one so the requests each server recorded prove which stage used it."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAI
from tests.live_server import live_api
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.compose import build_recognizer, build_service
from voiceqna.engines.asr_openai import OpenAIRecognizer
from voiceqna.errors import EngineUnavailable
from voiceqna.evaluation import metrics

KEYS = {"asr": "sk-asr-1c0e", "chat": "sk-chat-77ab", "tts": "sk-tts-5d21", "openai": "sk-openai-9e40"}


@pytest.fixture
def fakes():
    """Four FAKE OpenAI-compatible servers: one per stage, and one for the OPENAI_* settings."""
    servers = {name: FakeOpenAI() for name in KEYS}
    yield servers
    for server in servers.values():
        server.close()


def paths(fake: FakeOpenAI) -> list[str]:
    return [r["path"] for r in fake.requests]


def keys(fake: FakeOpenAI) -> set[str]:
    return {h["authorization"] for h in fake.headers}


def speech_with_silence_around(clip_bytes: bytes, seconds: float = 3.0) -> np.ndarray:
    quiet = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
    return np.concatenate([quiet, decode(clip_bytes), quiet])


def cer(reference: str, hypothesis: str) -> float:
    return metrics.cer([reference], [hypothesis])


# --- the recognizer on a server ------------------------------------------------------------


@pytest.mark.parametrize("name, samples", [
    ("silence", np.zeros(3 * SAMPLE_RATE, np.float32)),
    ("quiet noise", np.random.default_rng(7).normal(0, 0.01, 3 * SAMPLE_RATE).astype(np.float32)),
    ("loud noise", np.random.default_rng(7).normal(0, 0.3, 3 * SAMPLE_RATE).clip(-1, 1).astype(np.float32)),
    ("hum and clicks", np.where(np.arange(3 * SAMPLE_RATE) % (SAMPLE_RATE // 4) == 0, 0.9,
                                0.2 * np.sin(2 * np.pi * 60 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE))
     .astype(np.float32)),
])
def test_silence_and_noise_never_reach_the_fake_openai_transcription_server(fakes, name, samples):
    recognizer = OpenAIRecognizer(api_key="k", model="whisper-1", base_url=fakes["asr"].base_url)
    assert recognizer.transcribe(samples).text == ""
    assert fakes["asr"].requests == [], f"{name} was sent to the server"


def test_only_the_speech_of_a_real_clip_is_sent_to_the_fake_openai_server_in_korean(fakes, read_speech,
                                                                                      recognizer):
    clip = read_speech[0]
    samples = speech_with_silence_around(clip.path.read_bytes())
    remote = OpenAIRecognizer(api_key=KEYS["asr"], model="gpt-4o-transcribe", base_url=fakes["asr"].base_url)
    assert remote.transcribe(samples).text == fakes["asr"].transcript
    (request,) = fakes["asr"].requests
    assert request["path"] == "/v1/audio/transcriptions"
    assert (request["model"], request["language"]) == ("gpt-4o-transcribe", "ko")
    assert keys(fakes["asr"]) == {f"Bearer {KEYS['asr']}"}
    sent = decode(request["file"])
    sent_s, clip_s = sent.size / SAMPLE_RATE, decode(clip.path.read_bytes()).size / SAMPLE_RATE
    assert clip_s - 1.0 < sent_s < clip_s + 1.0, "the 6 s of silence around the speech were sent, or speech was cut"
    # What the server received is the spoken sentence: our own Whisper reads it back.
    assert cer(clip.text, recognizer.transcribe(sent).text) < 0.3


def test_a_transcript_that_is_a_known_hallucination_gives_no_text(fakes, read_speech):
    fakes["asr"].transcript = "시청해 주셔서 감사합니다."
    remote = OpenAIRecognizer(api_key="k", model="whisper-1", base_url=fakes["asr"].base_url)
    assert remote.transcribe(decode(read_speech[1].path.read_bytes())).text == ""
    assert len(fakes["asr"].requests) == 1


def test_a_failing_fake_openai_transcription_server_is_engine_unavailable_with_the_fix(fakes, read_speech):
    fakes["asr"].fail_with = 500
    remote = OpenAIRecognizer(api_key="k", model="whisper-1", base_url=fakes["asr"].base_url)
    with pytest.raises(EngineUnavailable, match="ASR_BASE_URL"):
        remote.transcribe(decode(read_speech[1].path.read_bytes()))


# --- every stage on its own server, through the service ---------------------------------------


def test_each_stage_uses_its_own_fake_openai_server(tmp_path, fakes, read_speech):
    settings = make_settings(
        tmp_path, openai_api_key=KEYS["openai"], openai_base_url=fakes["openai"].base_url,
        asr_engine="openai", asr_base_url=fakes["asr"].base_url, asr_api_key=KEYS["asr"], asr_model="whisper-1",
        chat_engine="openai", chat_base_url=fakes["chat"].base_url, chat_api_key=KEYS["chat"], chat_model="exaone",
        tts_engine="openai", tts_base_url=fakes["tts"].base_url, tts_api_key=KEYS["tts"], tts_model="tts-ko",
        tts_voice="nova",
    )
    service = build_service(settings)
    try:
        turn = service.send_audio(service.create(), read_speech[0].path.read_bytes())
    finally:
        service.close()
    assert (turn.transcript, turn.text) == (fakes["asr"].transcript, fakes["chat"].answer)
    assert turn.audio and not turn.audio_error
    assert paths(fakes["asr"]) == ["/v1/audio/transcriptions"]
    assert paths(fakes["chat"]) == ["/v1/chat/completions"]
    assert set(paths(fakes["tts"])) == {"/v1/audio/speech"}
    assert fakes["openai"].requests == []
    for name in ("asr", "chat", "tts"):
        assert keys(fakes[name]) == {f"Bearer {KEYS[name]}"}
    assert fakes["chat"].requests[0]["model"] == "exaone"
    assert fakes["chat"].requests[0]["messages"][-1]["content"] == fakes["asr"].transcript
    assert {(r["model"], r["voice"]) for r in fakes["tts"].requests} == {("tts-ko", "nova")}


def test_stages_without_a_server_of_their_own_fall_back_to_the_openai_fake_server(tmp_path, fakes, read_speech):
    # Today's setup (OPENAI_*) for recognition and chat; only speech moved to a server of its own.
    settings = make_settings(
        tmp_path, openai_api_key=KEYS["openai"], openai_base_url=fakes["openai"].base_url,
        openai_chat_model="old-chat", asr_engine="openai", tts_engine="openai",
        tts_base_url=fakes["tts"].base_url, tts_api_key=KEYS["tts"],
    )
    assert settings.resolved_chat_engine == "openai"
    service = build_service(settings)
    try:
        service.send_audio(service.create(), read_speech[0].path.read_bytes())
    finally:
        service.close()
    assert paths(fakes["openai"]) == ["/v1/audio/transcriptions", "/v1/chat/completions"]
    assert keys(fakes["openai"]) == {f"Bearer {KEYS['openai']}"}
    assert fakes["openai"].requests[1]["model"] == "old-chat"
    assert set(paths(fakes["tts"])) == {"/v1/audio/speech"} and keys(fakes["tts"]) == {f"Bearer {KEYS['tts']}"}
    assert fakes["asr"].requests == fakes["chat"].requests == []


def test_silence_through_the_service_calls_no_fake_openai_server(tmp_path, fakes):
    settings = make_settings(tmp_path, asr_engine="openai", asr_base_url=fakes["asr"].base_url, asr_api_key="k",
                             chat_engine="openai", chat_base_url=fakes["chat"].base_url, chat_api_key="k")
    recognizer = build_recognizer(settings)
    from voiceqna.audio import encode_wav

    service = build_service(settings, recognizer=recognizer)
    try:
        cid = service.create()
        turn = service.send_audio(cid, encode_wav(np.zeros(2 * SAMPLE_RATE, np.float32)))
        assert (turn.transcript, turn.stored) == ("", False)
        assert service.get(cid) == []
    finally:
        service.close()
    assert fakes["asr"].requests == fakes["chat"].requests == []


@pytest.mark.server
def test_info_names_each_stage_and_model_but_no_address_or_key_fake_openai_servers(tmp_path, fakes, read_speech):
    settings = dict(
        asr_engine="openai", asr_base_url=fakes["asr"].base_url, asr_api_key=KEYS["asr"], asr_model="whisper-1",
        chat_engine="openai", chat_base_url=fakes["chat"].base_url, chat_api_key=KEYS["chat"], chat_model="exaone",
        tts_engine="openai", tts_base_url=fakes["tts"].base_url, tts_api_key=KEYS["tts"], tts_model="tts-ko",
        tts_voice="nova",
    )
    with live_api(tmp_path / "data", **settings) as url:
        info = requests.get(f"{url}/info", timeout=10)
        cid = requests.post(f"{url}/create", json={}, timeout=10).json()["id"]
        with open(read_speech[0].path, "rb") as handle:
            turn = requests.post(f"{url}/send/audio/{cid}", files={"audio": ("q.wav", handle, "audio/wav")},
                                 timeout=120)
    assert turn.status_code == 200, turn.text
    assert turn.json()["text"] == fakes["chat"].answer
    assert [paths(fakes[name]) for name in ("asr", "chat")] == [["/v1/audio/transcriptions"], ["/v1/chat/completions"]]
    assert info.status_code == 200
    body = info.text
    for shown in ("transcription whisper-1", "exaone", "tts-ko/nova"):
        assert shown in body
    for secret in [*KEYS.values(), "127.0.0.1", *(str(f.server.server_address[1]) for f in fakes.values())]:
        assert secret not in body
