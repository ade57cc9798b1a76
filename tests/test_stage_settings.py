"""Each stage's own server settings (ASR_*, CHAT_*, TTS_*), their fallback to OPENAI_*, and the
start-up errors for an engine that lacks what it needs."""

from __future__ import annotations

import pytest

from voiceqna.config import Settings


def read(**env: str) -> Settings:
    return Settings.from_env({k.upper(): v for k, v in env.items()}, dotenv_path=None)


def stage(settings: Settings, name: str) -> tuple[str, str]:
    return getattr(settings, f"{name}_base_url"), getattr(settings, f"{name}_api_key")


def test_an_existing_openai_setup_reaches_every_stage():
    settings = read(openai_api_key="sk-old", openai_base_url="http://vllm:8000/v1", openai_chat_model="qwen",
                    openai_tts_model="tts-1", openai_tts_voice="nova")
    for name in ("asr", "chat", "tts"):
        assert stage(settings, name) == ("http://vllm:8000/v1", "sk-old")
    assert (settings.chat_model, settings.tts_model, settings.tts_voice) == ("qwen", "tts-1", "nova")
    assert settings.asr_model == "whisper-1"
    assert settings.resolved_chat_engine == "openai"


def test_a_stage_of_its_own_wins_and_the_others_keep_the_openai_server():
    settings = read(openai_api_key="sk-old", openai_base_url="http://vllm:8000/v1",
                    chat_base_url="http://ollama:11434/v1", chat_api_key="ollama", chat_model="exaone",
                    tts_model="gpt-4o-mini-tts", tts_voice="coral", asr_model="gpt-4o-transcribe")
    assert stage(settings, "chat") == ("http://ollama:11434/v1", "ollama")
    assert settings.chat_model == "exaone"
    assert stage(settings, "tts") == stage(settings, "asr") == ("http://vllm:8000/v1", "sk-old")
    assert (settings.tts_model, settings.tts_voice, settings.asr_model) == ("gpt-4o-mini-tts", "coral",
                                                                            "gpt-4o-transcribe")


def test_the_openai_key_is_never_given_to_a_stage_with_another_server():
    settings = read(openai_api_key="sk-secret", tts_base_url="http://xtts:8020/v1")
    assert stage(settings, "tts") == ("http://xtts:8020/v1", "")
    assert stage(settings, "chat") == ("", "sk-secret")  # api.openai.com, the key's own server
    with pytest.raises(ValueError, match="TTS_ENGINE=openai needs TTS_API_KEY"):
        read(openai_api_key="sk-secret", tts_base_url="http://xtts:8020/v1", tts_engine="openai")
    # The same server spelled out again is still the key's server.
    assert stage(read(openai_api_key="k", openai_base_url="http://a/v1", chat_base_url="http://a/v1"), "chat") \
        == ("http://a/v1", "k")


def test_auto_chat_means_openai_when_the_chat_stage_has_a_key():
    assert read().resolved_chat_engine == "offline"
    assert read(chat_api_key="k", chat_base_url="http://ollama:11434/v1").resolved_chat_engine == "openai"
    assert read(openai_api_key="k").resolved_chat_engine == "openai"
    # A key meant for speech only, on its own server, does not turn the chat engine on.
    assert read(tts_api_key="k", tts_base_url="http://xtts/v1").resolved_chat_engine == "offline"


@pytest.mark.parametrize("env, message", [
    ({"tts_engine": "openai"}, "TTS_ENGINE=openai needs TTS_API_KEY (or OPENAI_API_KEY"),
    ({"asr_engine": "openai"}, "ASR_ENGINE=openai needs ASR_API_KEY (or OPENAI_API_KEY"),
    ({"chat_engine": "openai"}, "CHAT_ENGINE=openai needs CHAT_API_KEY (or OPENAI_API_KEY"),
    ({"chat_engine": "llamacpp"}, "CHAT_ENGINE=llamacpp needs LLM_MODEL"),
    ({"asr_engine": "openai", "asr_api_key": "k", "asr_base_url": "localhost:8000"}, "ASR_BASE_URL"),
    ({"chat_engine": "llamacpp", "llm_model": "x.gguf", "llm_parallel": "0"}, "LLM_PARALLEL"),
])
def test_an_engine_without_what_it_needs_stops_the_start_with_the_fix(env, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        read(**env)


def test_each_openai_engine_starts_with_a_key_for_its_stage_alone():
    settings = read(asr_engine="openai", asr_api_key="a", chat_engine="openai", chat_api_key="c",
                    tts_engine="openai", tts_api_key="t")
    assert (settings.asr_api_key, settings.chat_api_key, settings.tts_api_key) == ("a", "c", "t")
    assert settings.openai_api_key == ""
