"""finetune.py end to end: a tiny randomly initialised Whisper, built offline with transformers, is
fine-tuned on the real Korean recordings (an audiofolder of symlinks), compared before and after,
converted, served by the app by name and measured by evaluate.py; Ctrl-C and --resume; the bad
inputs; and `python -m voiceqna.convert`. The tiny model's text is garbage: that its loss falls
and that every step runs for real is the point."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.tiers import tier
from voiceqna.audio import decode
from voiceqna.compose import build_recognizer
from voiceqna.config import PROJECT_ROOT
from voiceqna.engines import asr_whisper_models as models


FINETUNE = str(PROJECT_ROOT / "finetune.py")
TRAIN_FLAGS = ("--test-size", "0.2", "--batch-size", "2", "--learning-rate", "3e-3", "--seed", "0")


@pytest.fixture(scope="module")
@tier("model")  # torch, transformers and a Whisper model: the full tier, as tests/test_convert.py's
def tiny_whisper(tmp_path_factory) -> Path:
    """A Whisper checkpoint with tiny dimensions and random weights, with the real multilingual
    tokenizer (the bundled base's) and a complete generation config, saved as a local folder."""
    import torch
    from transformers import (GenerationConfig, WhisperConfig, WhisperFeatureExtractor,
                              WhisperForConditionalGeneration, WhisperTokenizerFast)
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    folder = tmp_path_factory.mktemp("hf") / "whisper-tiny-random"
    special = dict(decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257)
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=64, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128,
        max_source_positions=1500, max_target_positions=448, **special,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(Path(models.resolve("base", PROJECT_ROOT / "models"))
                                                         / "tokenizer.json"))
    ids = tokenizer.convert_tokens_to_ids
    model.generation_config = GenerationConfig(
        **special, max_length=448, is_multilingual=True, no_timestamps_token_id=ids("<|notimestamps|>"),
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={task: ids(f"<|{task}|>") for task in ("transcribe", "translate")},
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def recordings(read_speech, tmp_path_factory) -> Path:
    """The first 10 real recordings as an audiofolder (symlinks and metadata.csv) with one split."""
    folder = tmp_path_factory.mktemp("recordings")
    lines = ["file_name,text"]
    for clip in read_speech[:10]:
        (folder / clip.path.name).symlink_to(clip.path)
        lines.append(f"{clip.path.name},{clip.text}")
    (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


def finetune(models_dir: Path, *args: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    command = [sys.executable, FINETUNE, *args]
    env = dict(os.environ, MODELS_DIR=str(models_dir))
    if popen:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, text=True, **popen)
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def finetuned(tiny_whisper, recordings, models_dir, tmp_path_factory):
    """24 steps on 8 recordings (2 held out), a checkpoint every 12: (process, run folder)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-ko"
    result = finetune(models_dir, "--model", str(tiny_whisper), "--dataset", str(recordings), "--name", "tiny-ko",
                      "--output-dir", str(run_dir), "--max-steps", "24", "--save-steps", "12", *TRAIN_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, run_dir


def test_the_loss_falls_and_results_json_has_before_and_after(finetuned, models_dir):
    result, run_dir = finetuned
    report = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    losses = [point["loss"] for point in report["train_loss"]]
    assert [point["step"] for point in report["train_loss"]] == list(range(1, 25))
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.5, losses
    assert [point["step"] for point in report["eval_loss"]] == [12, 24]
    assert report["eval_loss"][1]["loss"] < report["eval_loss"][0]["loss"]
    assert report["best_step"] == 24 and report["steps"] == 24
    for side in ("before", "after"):
        assert report[side]["n"] == 2
        for figure in ("cer", "wer", "cer_numbers_read", "repetition_rate"):
            assert report[side][figure] >= 0, (side, figure)
    assert report["data"]["train"] == 8 and report["data"]["test"] == 2
    assert report["data"]["skipped"]["total"] == 0
    assert report["settings"]["batch_size"] == 2 and report["settings"]["learning_rate"] == 3e-3
    assert report["seconds_per_step"] > 0 and report["cpu_seconds_per_step"] > 0
    assert report["device"].startswith("cpu") and report["precision"] == "fp32"
    assert re.fullmatch(r"[0-9a-f]{40}", report["commit"])
    rows = (run_dir / "transcripts.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "id,reference,before,after" and len(rows) == 3
    assert "WHISPER_MODEL=tiny-ko python app.py" in result.stdout
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in run_dir.glob("checkpoint-*")) == ["checkpoint-24"], "only the best and latest kept"


def test_the_app_serves_the_fine_tuned_model_by_name(finetuned, models_dir, read_speech, tmp_path):
    for name in ("model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"):
        assert (models_dir / "tiny-ko" / name).is_file(), name
    recognizer = build_recognizer(make_settings(tmp_path, whisper_model="tiny-ko", models_dir=str(models_dir)))
    assert recognizer.description.startswith("Whisper tiny-ko (cpu, int8)")
    assert isinstance(recognizer.transcribe(decode(read_speech[0].path.read_bytes())).text, str)


def test_evaluate_measures_the_fine_tuned_model(finetuned, models_dir, recordings, tmp_path):
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--dataset", str(recordings), "--model", "tiny-ko", "--limit", "2",
         "--output", str(tmp_path / "eval")],
        cwd=PROJECT_ROOT, env=dict(os.environ, MODELS_DIR=str(models_dir)), capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((tmp_path / "eval" / "results.json").read_text())["runs"][0]
    assert run["settings"]["model"] == "tiny-ko" and run["n"] == 2 and run["cer"] >= 0


def test_convert_only_converts_the_best_checkpoint_again(finetuned, models_dir, monkeypatch):
    import finetune as cli

    _, run_dir = finetuned
    monkeypatch.setenv("MODELS_DIR", str(models_dir))
    assert cli.main(["--name", "tiny-ko-again", "--output-dir", str(run_dir), "--convert-only"]) == 0
    assert (models_dir / "tiny-ko-again" / "model.bin").is_file()


def test_ctrl_c_keeps_a_checkpoint_and_resume_continues_from_it(tiny_whisper, recordings, models_dir, tmp_path):
    run_dir = tmp_path / "run"
    common = ("--model", str(tiny_whisper), "--dataset", str(recordings), "--name", "tiny-resumed",
              "--output-dir", str(run_dir), "--save-steps", "3", "--max-test", "1", *TRAIN_FLAGS)
    process = finetune(models_dir, *common, "--max-steps", "1000", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint-3").is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "--resume" in stderr and "Traceback" not in stderr
    stopped_at = max(int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*"))
    interrupted = json.loads((run_dir / f"checkpoint-{stopped_at}" / "state.json").read_text())
    assert interrupted["step"] == stopped_at >= 3
    assert not (models_dir / "tiny-resumed").exists(), "nothing converted from an interrupted run"

    again = finetune(models_dir, *common, "--max-steps", str(stopped_at + 2), "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"at step {stopped_at} of {stopped_at + 2}" in again.stderr
    report = json.loads((run_dir / "results.json").read_text())
    assert [p["step"] for p in report["train_loss"]] == list(range(1, stopped_at + 3))
    assert report["train_loss"][:stopped_at] == interrupted["train_loss"]
    assert (models_dir / "tiny-resumed" / "model.bin").is_file()


def test_gpu_out_of_memory_names_the_setting_to_lower_with_a_fake_oom(tiny_whisper, recordings, tmp_path,
                                                                       monkeypatch):
    """No GPU here: the model's loss raises torch's out-of-memory error as CUDA would."""
    import torch

    from voiceqna.evaluation import finetune_model, finetune_train
    from voiceqna.evaluation.finetune_data import load_splits

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    splits = load_splits(str(recordings), test_size=0.2)
    whisper = finetune_model.load(str(tiny_whisper))
    monkeypatch.setattr(finetune_model, "loss", out_of_memory)
    options = finetune_train.TrainOptions(batch_size=16, max_steps=2)
    with pytest.raises(finetune_train.OutOfMemory, match=r"lower --batch-size \(e\.g\. --batch-size 8\)"):
        finetune_train.train(whisper, splits, options, tmp_path / "run")


def _audiofolder(folder: Path, csv_text: str, files: dict[str, Path] | None = None) -> Path:
    folder.mkdir()
    (folder / "metadata.csv").write_text(csv_text, encoding="utf-8")
    for name, target in (files or {}).items():
        (folder / name).symlink_to(target)
    return folder


@pytest.mark.parametrize("case", ["no transcripts", "no audio files", "no audio column", "only empty texts"])
def test_a_dataset_without_audio_or_transcripts_is_refused_clearly(case, read_speech, tiny_whisper, tmp_path,
                                                                   caplog):
    import finetune as cli

    clip = read_speech[0].path
    if case == "no transcripts":
        dataset, expected = _audiofolder(tmp_path / "d", "file_name,sentence\na.wav,안녕\n", {"a.wav": clip}), \
            "every row needs file_name and text"
    elif case == "no audio files":
        dataset, expected = _audiofolder(tmp_path / "d", "file_name,text\na.wav,안녕\n"), "audio file(s) named in"
    elif case == "no audio column":
        import datasets

        dataset = tmp_path / "saved"
        datasets.Dataset.from_dict({"text": ["안녕", "반가워"]}).save_to_disk(str(dataset))
        expected = "has no 'audio' column"
    else:
        dataset = _audiofolder(tmp_path / "d", "file_name,text\na.wav,...\nb.wav,!\n", {"a.wav": clip, "b.wav": clip})
        expected = "leaves no utterance to train on (0 longer than 30 s, 2 with an empty text"
    code = cli.main(["--model", str(tiny_whisper), "--dataset", str(dataset), "--name", "x",
                     "--output-dir", str(tmp_path / "run")])
    assert code == 2 and expected in caplog.text
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_a_model_that_is_not_whisper_is_refused_clearly(recordings, tmp_path, caplog):
    import finetune as cli

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    code = cli.main(["--model", str(bert), "--dataset", str(recordings), "--name", "x", "--test-size", "0.2",
                     "--output-dir", str(tmp_path / "run")])
    assert code == 2 and "is a bert model, not Whisper" in caplog.text


def test_a_name_that_exists_is_refused_before_any_work_unless_forced(tmp_path, monkeypatch, caplog):
    import finetune as cli

    (tmp_path / "models" / "taken").mkdir(parents=True)
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    code = cli.main(["--model", "nowhere", "--dataset", "nowhere", "--name", "taken"])
    assert code == 2 and "already exists: pass --force to replace it, or choose another --name" in caplog.text
    run_dir = tmp_path / "run"
    (run_dir / "checkpoint-5").mkdir(parents=True)
    (run_dir / "checkpoint-5" / "state.json").write_text("{}")
    code = cli.main(["--model", "nowhere", "--dataset", "nowhere", "--name", "free", "--output-dir", str(run_dir)])
    assert code == 2 and "holds an earlier run: --resume to continue it, --force to start over" in caplog.text


def test_the_conversion_command_is_python_m_voiceqna_convert():
    result = subprocess.run([sys.executable, "-m", "voiceqna.convert", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m voiceqna.convert")
    assert "--quantization" in result.stdout
