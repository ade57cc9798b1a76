"""Fine-tune Whisper for Korean end to end: data, scores before, training, scores after, results.json, conversion.

The steps, each in its own module: finetune_data (the utterances), finetune_model (the
checkpoint, its batches and transcripts), finetune_train (the loop and its checkpoints),
convert (the best checkpoint to CTranslate2 in MODELS_DIR/NAME, as `python -m
voiceqna.convert` does). Scores are evaluate.py's (voiceqna.evaluation.metrics) on the same
test utterances before and after.
"""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from voiceqna.config import PROJECT_ROOT
from voiceqna.errors import VoiceQnAError
from voiceqna.evaluation import convert, finetune_model, finetune_train, metrics
from voiceqna.evaluation.finetune_data import Example, Splits, load_splits
from voiceqna.evaluation.finetune_train import TrainOptions, TrainState

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"
BEFORE_FILE = "before.json"
"""The scores of the model as given, kept so a resumed run compares with the same."""


@dataclass(frozen=True)
class FinetuneOptions:
    model: str
    """Hub id or folder of the Whisper checkpoint to start from."""
    dataset: str
    name: str
    """The converted model's folder under models_dir, and the default run folder runs/NAME."""
    output_dir: Path
    models_dir: Path
    train: TrainOptions
    test_size: float = 0.1
    train_split: str = "train"
    test_split: str = "test"
    max_train: int | None = None
    max_test: int | None = None
    quantization: str = "int8"
    resume: bool = False
    force: bool = False


@dataclass(frozen=True)
class Outcome:
    results: Path
    model_dir: Path
    """The converted CTranslate2 model."""
    report: dict


def run(options: FinetuneOptions) -> Outcome:
    """Everything, in order; VoiceQnAError (the message says the fix) before any long work when
    an option is wrong, finetune_train.Interrupted on Ctrl-C after a checkpoint is written."""
    convert.target(options.name, options.models_dir, options.quantization, options.force)
    resume_from = _prepare_output(options)
    splits = load_splits(options.dataset, options.test_size, options.train.seed, options.train_split,
                         options.test_split, options.max_train, options.max_test)
    device = finetune_train.pick_device(options.train.device)
    whisper = finetune_model.load(str(resume_from or options.model))
    before = _before(options, splits, device, resume_from, whisper)
    state = finetune_train.train(whisper, splits, options.train, options.output_dir, resume_from)
    best = options.output_dir / f"{finetune_train.CHECKPOINT_PREFIX}{state.best_step}"
    logger.info("Best checkpoint: %s (loss on the test utterances %.4f)", best, state.best_loss)
    hypotheses = finetune_model.transcribe(finetune_model.load(str(best)), splits.test,
                                           options.train.batch_size, device)
    after = scores(splits.test, hypotheses)
    _write_transcripts(options.output_dir, splits.test, before["hypotheses"], hypotheses)
    report = _report(options, splits, state, best, device, _public(before), after)
    results = options.output_dir / RESULTS_FILE
    results.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    logger.info("CER %.4f -> %.4f, WER %.4f -> %.4f; wrote %s", before["cer"], after["cer"], before["wer"],
                after["wer"], results)
    model_dir = convert.convert(str(best), options.name, options.models_dir, options.quantization, options.force)
    return Outcome(results, model_dir, report)


def convert_only(options: FinetuneOptions) -> Path:
    """Convert the best checkpoint of an earlier (or interrupted) run in output_dir."""
    found = finetune_train.checkpoints(options.output_dir)
    if not found:
        raise VoiceQnAError(f"{options.output_dir} has no checkpoint: fine-tune first (without --convert-only)")
    state = finetune_train.read_state(found[-1])
    best = options.output_dir / f"{finetune_train.CHECKPOINT_PREFIX}{state.best_step}"
    return convert.convert(str(best if best.is_dir() else found[-1]), options.name, options.models_dir,
                           options.quantization, options.force)


def scores(examples: Sequence[Example], hypotheses: Sequence[str]) -> dict:
    """evaluate.py's corpus figures: CER, WER, CER with numbers read out, repetition."""
    chars = sum((metrics.char_errors(e.text, h) for e, h in zip(examples, hypotheses)), metrics.ErrorCounts())
    words = sum((metrics.word_errors(e.text, h) for e, h in zip(examples, hypotheses)), metrics.ErrorCounts())
    spoken = sum((metrics.spoken_char_errors(e.text, h) for e, h in zip(examples, hypotheses)),
                 metrics.ErrorCounts())
    repeated = sum(1 for e, h in zip(examples, hypotheses) if metrics.repeated_span(e.text, h))
    return {"n": len(examples), "cer": chars.rate, "wer": words.rate, "cer_numbers_read": spoken.rate,
            "repetition_rate": repeated / len(examples) if examples else 0.0, "repetitions": repeated,
            "hypotheses": list(hypotheses)}


def _prepare_output(options: FinetuneOptions) -> Path | None:
    """The checkpoint to resume from (None for a fresh start); a fresh start over an earlier
    run's checkpoints needs --force, which removes them."""
    found = finetune_train.checkpoints(options.output_dir)
    if options.resume:
        if not found:
            raise VoiceQnAError(f"--resume: {options.output_dir} has no checkpoint to continue; drop --resume")
        return found[-1]
    if found or (options.output_dir / RESULTS_FILE).exists():
        if not options.force:
            raise VoiceQnAError(f"{options.output_dir} holds an earlier run: --resume to continue it, --force to "
                                "start over (its checkpoints are deleted), or another --output-dir")
        for old in found:
            shutil.rmtree(old)
        for name in (RESULTS_FILE, BEFORE_FILE):
            (options.output_dir / name).unlink(missing_ok=True)
    options.output_dir.mkdir(parents=True, exist_ok=True)
    return None


def _before(options: FinetuneOptions, splits: Splits, device: str, resume_from: Path | None,
            whisper: finetune_model.Whisper) -> dict:
    """Scores of the model as given on the test utterances (read back when resuming)."""
    path = options.output_dir / BEFORE_FILE
    if resume_from is not None:
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        whisper = finetune_model.load(options.model)
    logger.info("Transcribing %d test utterances with %s before fine-tuning", len(splits.test), options.model)
    whisper.model.to(device)
    before = scores(splits.test, finetune_model.transcribe(whisper, splits.test, options.train.batch_size, device))
    path.write_text(json.dumps(before, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return before


def _public(figures: dict) -> dict:
    return {k: v for k, v in figures.items() if k != "hypotheses"}


def _write_transcripts(output_dir: Path, examples: Sequence[Example], before: Sequence[str],
                       after: Sequence[str]) -> None:
    with open(output_dir / "transcripts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "reference", "before", "after"])
        for example, b, a in zip(examples, before, after):
            writer.writerow([example.id, example.text, b, a])


def _report(options: FinetuneOptions, splits: Splits, state: TrainState, best: Path, device: str,
            before: dict, after: dict) -> dict:
    settings = {k: v for k, v in asdict(options).items() if k != "train"} | asdict(options.train)
    return {
        "model": options.model,
        "dataset": options.dataset,
        "name": options.name,
        "before": before,
        "after": _public(after),
        "train_loss": state.train_loss,
        "eval_loss": state.eval_loss,
        "best_step": state.best_step,
        "best_checkpoint": str(best),
        "steps": state.step,
        "seconds_per_step": state.seconds_per_step,
        "cpu_seconds_per_step": state.cpu_seconds_per_step,
        "data": splits.sizes(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
        "device": _device_description(device),
        "precision": finetune_train.pick_precision(device).name,
        "commit": _commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "normalisation": "transcripts normalised as evaluate.py normalises references (voiceqna.textnorm.normalize); "
        "scores from voiceqna.evaluation.metrics",
    }


def _device_description(device: str) -> str:
    import torch

    if device == "cuda":
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {torch.get_num_threads()} threads"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"
