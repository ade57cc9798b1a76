"""The Whisper checkpoint being fine-tuned: loading it, Korean batches for it, and its transcripts.

Labels start with Whisper's Korean transcribe prefix (<|startoftranscript|><|ko|><|transcribe|>
<|notimestamps|>) and end with <|endoftext|>; the model shifts them right itself, so the first
token is dropped from the labels, and padding is -100 (ignored by the loss). Transcripts for
the before/after comparison come from `generate(language="ko", task="transcribe")`, greedy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.errors import VoiceQnAError
from voiceqna.evaluation.finetune_data import Example

logger = logging.getLogger(__name__)

LANGUAGE = "ko"
MAX_NEW_TOKENS = 200
"""Longest transcript generated for one utterance (Whisper's decoder holds 448 tokens)."""


class NotWhisper(VoiceQnAError):
    """The model to fine-tune is not a Whisper checkpoint, or cannot be loaded."""


@dataclass
class Whisper:
    """A Whisper checkpoint with its tokenizer (Korean transcribe prefix set) and feature extractor."""

    model: object
    """transformers.WhisperForConditionalGeneration"""
    tokenizer: object
    extractor: object

    def save(self, folder: Path) -> None:
        """A complete checkpoint: what `from_pretrained` and the converter read."""
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        self.extractor.save_pretrained(folder)


def load(source: str) -> Whisper:
    """The model, tokenizer and feature extractor of `source` (a hub id or a folder)."""
    import transformers

    try:
        model_type = transformers.AutoConfig.from_pretrained(source).model_type
    except (OSError, ValueError) as exc:
        raise NotWhisper(
            f"Could not load {source!r} ({type(exc).__name__}: {exc}). Give a Whisper checkpoint: a hub id such as "
            "openai/whisper-base (online) or a folder with config.json, the weights and the tokenizer files."
        ) from None
    if model_type != "whisper":
        raise NotWhisper(f"{source!r} is a {model_type} model, not Whisper: give a Whisper checkpoint "
                         "such as openai/whisper-base")
    try:
        model = transformers.WhisperForConditionalGeneration.from_pretrained(source)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        extractor = transformers.WhisperFeatureExtractor.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise NotWhisper(f"{source!r} is incomplete ({type(exc).__name__}: {exc}): it needs the weights, "
                         "the tokenizer files and preprocessor_config.json") from None
    tokenizer.set_prefix_tokens(language=LANGUAGE, task="transcribe", predict_timestamps=False)
    _complete_generation_config(model, tokenizer)
    return Whisper(model, tokenizer, extractor)


def _complete_generation_config(model, tokenizer) -> None:
    """The language and task ids generate(language=, task=) needs, from the tokenizer where the
    checkpoint's generation config lacks them; no forced ids (the prefix is given per call)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    config = model.generation_config
    ids = tokenizer.convert_tokens_to_ids
    if not getattr(config, "lang_to_id", None):
        config.lang_to_id = {f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES}
    if not getattr(config, "task_to_id", None):
        config.task_to_id = {task: ids(f"<|{task}|>") for task in ("transcribe", "translate")}
    if getattr(config, "no_timestamps_token_id", None) is None:
        config.no_timestamps_token_id = ids("<|notimestamps|>")
    config.is_multilingual = True
    config.forced_decoder_ids = None
    config.language, config.task = LANGUAGE, "transcribe"


def features(whisper: Whisper, examples: Sequence[Example]):
    """Log-mel input features (batch, mels, 3000) of the examples' audio, decoded by voiceqna.audio."""
    audio = [decode(e.audio) for e in examples]
    return whisper.extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features


def labels(whisper: Whisper, examples: Sequence[Example]):
    """Token ids of prefix + text + end, without the first token (the decoder start the model
    adds back), padded with -100."""
    import torch

    rows = [whisper.tokenizer(e.text).input_ids for e in examples]
    start = whisper.model.config.decoder_start_token_id
    rows = [row[1:] if row and row[0] == start else row for row in rows]
    limit = whisper.model.config.max_target_positions
    rows = [row[:limit] for row in rows]
    width = max(len(row) for row in rows)
    padded = np.full((len(rows), width), -100, dtype=np.int64)
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    return torch.from_numpy(padded)


def loss(whisper: Whisper, examples: Sequence[Example], device: str, autocast) -> "torch.Tensor":
    """Mean cross-entropy of the batch's labels."""
    inputs = features(whisper, examples).to(device)
    targets = labels(whisper, examples).to(device)
    with autocast():
        return whisper.model(input_features=inputs.to(_dtype_of(whisper)), labels=targets).loss


def eval_loss(whisper: Whisper, examples: Sequence[Example], batch_size: int, device: str, autocast) -> float:
    """Mean loss over `examples` (teacher-forced, no gradients): what picks the best checkpoint."""
    import torch

    whisper.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            total += float(loss(whisper, batch, device, autocast)) * len(batch)
            count += len(batch)
    whisper.model.train()
    return total / count


def transcribe(whisper: Whisper, examples: Sequence[Example], batch_size: int, device: str) -> list[str]:
    """Greedy Korean transcripts of the examples."""
    import torch

    whisper.model.eval()
    out: list[str] = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            inputs = features(whisper, batch).to(device).to(_dtype_of(whisper))
            generated = whisper.model.generate(input_features=inputs, language=LANGUAGE, task="transcribe",
                                               max_new_tokens=MAX_NEW_TOKENS, num_beams=1, do_sample=False)
            sequences = getattr(generated, "sequences", generated)
            out += whisper.tokenizer.batch_decode(sequences, skip_special_tokens=True)
    whisper.model.train()
    return [text.strip() for text in out]


def _dtype_of(whisper: Whisper):
    return next(whisper.model.parameters()).dtype
