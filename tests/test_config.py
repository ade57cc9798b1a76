from pathlib import Path

import pytest

from voiceqna.config import Settings


def test_defaults_are_offline():
    settings = Settings.from_env({}, dotenv_path=None)
    assert settings.whisper.model == "base"
    assert settings.resolved_chat_engine == "offline"
    assert settings.tts_engine == "espeak"
    assert settings.store == "sqlite"


def test_environment_overrides_and_types():
    settings = Settings.from_env(
        {"WHISPER_BEAM_SIZE": "5", "MAX_UPLOAD_MB": "1.5", "DATA_DIR": "/tmp/x", "OPENAI_API_KEY": "sk-test"},
        dotenv_path=None,
    )
    assert settings.whisper.beam_size == 5
    assert settings.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert settings.data_dir == Path("/tmp/x")
    assert settings.resolved_chat_engine == "openai"


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("WHISPER_MODEL=small\nCHAT_ENGINE=offline\n")
    settings = Settings.from_env({"WHISPER_MODEL": "large-v3"}, dotenv_path=dotenv)
    assert settings.whisper.model == "large-v3"
    assert settings.chat_engine == "offline"


def test_settings_are_frozen():
    settings = Settings()
    with pytest.raises((AttributeError, ValueError)):  # a frozen dataclass's or a frozen pydantic model's error
        settings.whisper.model = "tiny"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CHAT_ENGINE": "gpt"}, "CHAT_ENGINE"),
        ({"WHISPER_BEAM_SIZE": "five"}, "WHISPER_BEAM_SIZE"),
        ({"CHAT_ENGINE": "openai"}, "OPENAI_API_KEY"),
        ({"STORE": "mongodb"}, "MONGODB_URI"),
    ],
)
def test_bad_values_say_which_variable_and_the_fix(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env, dotenv_path=None)


def test_whisper_options_are_one_group_read_with_its_prefix():
    settings = Settings.from_env({"WHISPER_WORKERS": "3", "WHISPER_TEMPERATURES": "0, 0.2, 0.4",
                                  "WHISPER_VAD_THRESHOLD": "0.5"}, dotenv_path=None)
    assert (settings.whisper.workers, settings.whisper.temperatures) == (3, (0.0, 0.2, 0.4))
    assert settings.whisper.vad_threshold == 0.5
    assert settings.whisper.model == "base"  # the rest keep their documented defaults


@pytest.mark.parametrize("variable", ["ASR_ENGINE", "TTS_ENGINE", "STORE"])
def test_every_engine_choice_is_checked_against_the_registry(variable):
    from voiceqna import registry

    stage = next(s for s, v in registry.STAGES.items() if v == variable)
    with pytest.raises(ValueError, match=f"{variable}='nope': use one of {', '.join(registry.names(stage))}"):
        Settings.from_env({variable: "nope"}, dotenv_path=None)
