import pytest

from voiceqna.engines import asr_whisper_models as models


def test_base_resolves_to_the_bundled_model_offline(tmp_path):
    path = models.resolve("base", tmp_path)
    assert path == str(tmp_path / "whisper-base")
    assert models.sha256_of(tmp_path / "whisper-base" / "model.bin") == models.BUNDLED_BASE_SHA256
    # Second call reuses the assembled folder.
    assert models.resolve("whisper-base", tmp_path) == path


def test_folder_and_name_under_models_dir(tmp_path):
    folder = tmp_path / "my-ko"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"x")
    (folder / "config.json").write_text("{}")
    assert models.resolve(str(folder), tmp_path / "elsewhere") == str(folder)
    assert models.resolve("my-ko", tmp_path) == str(folder)


def test_hub_names_pass_through_for_online_users(tmp_path):
    assert models.resolve("large-v3", tmp_path) == "large-v3"
    assert models.resolve("aiegoo/whisper-tiny-ko", tmp_path) == "aiegoo/whisper-tiny-ko"


def test_a_corrupt_assembly_is_refused_and_leaves_no_model(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "BUNDLED_BASE_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="reinstall"):
        models.resolve("base", tmp_path)
    assert not (tmp_path / "whisper-base" / "model.bin").exists()
    assert not list((tmp_path / "whisper-base").glob("*.tmp"))
