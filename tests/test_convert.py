"""Bring your own model: a tiny randomly initialised Whisper, built offline with transformers, is
converted by `python -m voiceqna.convert` and then loaded and run by the app's recognizer and
by evaluate.py, by name. Its text is garbage; that it loads, runs and returns text is the point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import espeak_wav, make_settings
from tests.tiers import tier
from voiceqna.engines import asr_whisper_models as models
from voiceqna.audio import decode
from voiceqna.compose import build_recognizer
from voiceqna.config import PROJECT_ROOT
from voiceqna.evaluation.convert import ConversionError, convert, default_name


@pytest.fixture(scope="module")
def base_dir() -> Path:
    """The bundled Whisper base model: its tokenizer is the real multilingual Whisper tokenizer."""
    return Path(models.resolve("base", PROJECT_ROOT / "models"))


@pytest.fixture(scope="module")
@tier("model")
def tiny_checkpoint(tmp_path_factory, base_dir) -> Path:
    """A Hugging Face Whisper checkpoint with tiny dimensions and random weights, made offline."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizerFast

    folder = tmp_path_factory.mktemp("hf") / "whisper-tiny-random"
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
    )
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    WhisperTokenizerFast(tokenizer_file=str(base_dir / "tokenizer.json")).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


def run_convert(models_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voiceqna.convert", *args], cwd=PROJECT_ROOT,
                          env=dict(os.environ, MODELS_DIR=str(models_dir)), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def converted(tiny_checkpoint, models_dir) -> Path:
    result = run_convert(models_dir, str(tiny_checkpoint), "--name", "tiny-ko", "--quantization", "int8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WHISPER_MODEL=tiny-ko" in result.stderr
    return models_dir / "tiny-ko"


def test_conversion_writes_a_complete_ctranslate2_model(converted, models_dir, base_dir):
    import tokenizers

    for name in ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (converted / name).is_file(), name
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny-ko"], "no temporary folder left behind"
    config = json.loads((converted / "config.json").read_text())
    ours = tokenizers.Tokenizer.from_file(str(converted / "tokenizer.json"))
    reference = tokenizers.Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    # The checkpoint's generation config has no lang_to_id: the ids come from the tokenizer.
    assert ours.token_to_id("<|ko|>") in config["lang_ids"] and len(config["lang_ids"]) == 99
    sentence = "저 식당 음식이 정말 맛있나 봐요."
    assert ours.encode(sentence).ids == reference.encode(sentence).ids
    assert ours.decode(reference.encode(sentence).ids) == sentence
    assert json.loads((converted / "preprocessor_config.json").read_text())["feature_size"] == 80


def test_the_app_loads_the_converted_model_by_name(converted, models_dir, tmp_path):
    settings = make_settings(tmp_path, whisper_model="tiny-ko", models_dir=str(models_dir))
    assert models.resolve("tiny-ko", models_dir) == str(converted)
    recognizer = build_recognizer(settings)
    transcript = recognizer.transcribe(decode(espeak_wav("안녕하세요", tmp_path / "q.wav").read_bytes()))
    assert isinstance(transcript.text, str)
    assert recognizer.description.startswith("Whisper tiny-ko (cpu, int8)")


def test_evaluate_compares_the_converted_model_with_base(converted, models_dir, base_dir, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    espeak_wav("감사합니다", folder / "a.wav")
    (folder / "metadata.csv").write_text("file_name,text\na.wav,감사합니다\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--dataset", str(folder), "--model", "tiny-ko", "--model", str(base_dir),
         "--compute-type", "int8", "--output", str(tmp_path / "out")],
        cwd=PROJECT_ROOT, env=dict(os.environ, MODELS_DIR=str(models_dir)), capture_output=True, text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["settings"]["model"] for r in runs] == ["tiny-ko", str(base_dir)]
    assert all(r["n"] == 1 for r in runs)
    assert runs[1]["cer"] < runs[0]["cer"], "the real model beats random weights"


def test_existing_model_is_kept_unless_forced(converted, tiny_checkpoint, models_dir):
    before = (converted / "model.bin").stat().st_mtime_ns
    result = run_convert(models_dir, str(tiny_checkpoint), "--name", "tiny-ko")
    assert result.returncode == 2 and "already exists: pass --force" in result.stderr
    assert (converted / "model.bin").stat().st_mtime_ns == before
    convert(str(tiny_checkpoint), "tiny-ko", models_dir, "float16", force=True)
    assert (converted / "model.bin").stat().st_mtime_ns != before
    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny-ko"]


def test_bad_sources_and_names_leave_nothing_behind(tmp_path):
    models_dir = tmp_path / "models"
    not_whisper = tmp_path / "bert"
    not_whisper.mkdir()
    (not_whisper / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConversionError, match="is a bert model, not Whisper"):
        convert(str(not_whisper), "x", models_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConversionError, match="Could not convert .*Give a Whisper checkpoint"):
        convert(str(empty), "x", models_dir)
    for name in ("../escape", "base", "whisper-base", ""):
        with pytest.raises(ConversionError, match="cannot be a model name"):
            convert(str(not_whisper), name, models_dir)
    with pytest.raises(ConversionError, match="quantization 'int3'"):
        convert(str(not_whisper), "x", models_dir, "int3")
    assert list(models_dir.iterdir()) == []


def test_default_name_is_the_last_path_component():
    assert default_name("aiegoo/whisper-tiny-ko") == "whisper-tiny-ko"
    assert default_name("/data/finetunes/my-ko/") == "my-ko"
