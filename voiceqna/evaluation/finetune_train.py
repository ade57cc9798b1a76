"""The training loop: seeded batches, AdamW with warm-up, mixed precision on CUDA, checkpoints, resume, Ctrl-C.

A plain torch loop rather than Seq2SeqTrainer: the same steps at the same speed
(benchmarks/finetune_step.py measures both), without accelerate, and with the few things this
tool needs in plain sight: a checkpoint on Ctrl-C, a clear message when the GPU runs out of
memory, the loss curve in results.json.

Every `save_steps` steps (and at the end, and on Ctrl-C) the loop writes
`checkpoint-STEP/`: a complete Hugging Face checkpoint (what the converter reads) plus
`optimizer.pt` and `state.json` (step, loss curve, evaluation losses, best step). The batches
of epoch e are a shuffle seeded with seed + e, so a resumed run sees the batches the
interrupted one would have seen. Only the latest and the best checkpoint (lowest loss on the
test utterances) are kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from voiceqna.errors import VoiceQnAError
from voiceqna.evaluation import finetune_model
from voiceqna.evaluation.finetune_data import Example, Splits
from voiceqna.evaluation.finetune_model import Whisper

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"


class OutOfMemory(VoiceQnAError):
    """The GPU ran out of memory; the message says which setting to lower."""


class Interrupted(VoiceQnAError):
    """Ctrl-C: the checkpoint written on the way out is in the message."""


@dataclass(frozen=True)
class TrainOptions:
    batch_size: int = 8
    learning_rate: float = 1e-5
    max_steps: int | None = None
    """Stop after this many optimiser steps (None: run `epochs` epochs)."""
    epochs: float = 1.0
    warmup_steps: int | None = None
    """Steps of linear warm-up (None: a tenth of the steps, at most 500)."""
    save_steps: int = 500
    """A checkpoint (and a loss on the test utterances) every this many steps."""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when there is one), cuda or cpu."""
    gradient_checkpointing: bool = True
    """On CUDA: recompute activations in the backward pass (less memory, ~30 % slower)."""


@dataclass
class TrainState:
    step: int = 0
    train_loss: list[dict] = field(default_factory=list)
    """{"step", "loss"} per optimiser step."""
    eval_loss: list[dict] = field(default_factory=list)
    """{"step", "loss"} on the test utterances at every checkpoint."""
    best_step: int | None = None
    train_s: float = 0.0
    """Seconds spent in training steps (checkpoints and evaluation excluded), all sessions together."""
    train_cpu_s: float = 0.0
    """This process's CPU seconds in those steps (all threads): barely changed by other processes' load."""
    steps_timed: int = 0

    @property
    def best_loss(self) -> float:
        return min((e["loss"] for e in self.eval_loss), default=math.inf)

    @property
    def seconds_per_step(self) -> float | None:
        return self.train_s / self.steps_timed if self.steps_timed else None

    @property
    def cpu_seconds_per_step(self) -> float | None:
        return self.train_cpu_s / self.steps_timed if self.steps_timed else None


@dataclass(frozen=True)
class Precision:
    name: str
    """fp32, bf16 or fp16."""
    autocast: Callable[[], contextlib.AbstractContextManager]


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise VoiceQnAError("--device cuda, but torch sees no CUDA GPU: use --device cpu (or auto)")
    return requested


def pick_precision(device: str) -> Precision:
    """bf16 where the GPU has it, else fp16 (with loss scaling); fp32 on the CPU."""
    import torch

    if device != "cuda":
        return Precision("fp32", contextlib.nullcontext)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    name = "bf16" if dtype == torch.bfloat16 else "fp16"
    return Precision(name, lambda: torch.autocast("cuda", dtype=dtype))


def total_steps(options: TrainOptions, examples: int) -> int:
    per_epoch = math.ceil(examples / options.batch_size)
    return options.max_steps or max(1, math.ceil(options.epochs * per_epoch))


def batch_at(examples: list[Example], step: int, batch_size: int, seed: int) -> list[Example]:
    """The batch of optimiser step `step` (0-based): the same in a resumed run."""
    per_epoch = math.ceil(len(examples) / batch_size)
    epoch, index = divmod(step, per_epoch)
    order = list(range(len(examples)))
    random.Random(seed + epoch).shuffle(order)
    return [examples[i] for i in order[index * batch_size : (index + 1) * batch_size]]


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints in `output_dir`, oldest first."""
    found = [p for p in output_dir.glob(f"{CHECKPOINT_PREFIX}*") if (p / STATE_FILE).is_file()
             and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def read_state(checkpoint: Path) -> TrainState:
    return TrainState(**json.loads((checkpoint / STATE_FILE).read_text()))


def train(whisper: Whisper, splits: Splits, options: TrainOptions, output_dir: Path,
          resume_from: Path | None = None) -> TrainState:
    """Train until the last step; the state of the run (loss curve, best step). Raises
    Interrupted on Ctrl-C (after writing a checkpoint) and OutOfMemory when the GPU is full."""
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    device = pick_device(options.device)
    precision = pick_precision(device)
    model = whisper.model.to(device)
    if device == "cuda" and options.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    model.train()
    total = total_steps(options, len(splits.train))
    warmup = options.warmup_steps if options.warmup_steps is not None else min(500, total // 10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    scaler = torch.amp.GradScaler("cuda", enabled=precision.name == "fp16")
    state = TrainState()
    if resume_from is not None:
        state = read_state(resume_from)
        saved = torch.load(resume_from / OPTIMIZER_FILE, map_location=device, weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        logger.info("Resuming from %s at step %d of %d", resume_from, state.step, total)
    logger.info("Training on %s (%s): %d steps, batch size %d, learning rate %g, %d warm-up steps",
                device, precision.name, total, options.batch_size, options.learning_rate, warmup)

    def save() -> Path:
        state.eval_loss.append({"step": state.step, "loss": finetune_model.eval_loss(
            whisper, splits.test, options.batch_size, device, precision.autocast)})
        if state.eval_loss[-1]["loss"] <= state.best_loss:
            state.best_step = state.step
        extra = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict()}
        folder = _save_checkpoint(whisper, state, extra, output_dir)
        logger.info("Step %d: loss on the test utterances %.4f; saved %s", state.step, state.eval_loss[-1]["loss"],
                    folder)
        return folder

    saved_at = state.step
    bar = tqdm(total=total, initial=state.step, desc="fine-tuning", unit="step", disable=None)
    try:
        while state.step < total:
            batch = batch_at(splits.train, state.step, options.batch_size, options.seed)
            started, started_cpu = time.perf_counter(), time.process_time()
            loss = finetune_model.loss(whisper, batch, device, precision.autocast)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            state.train_s += time.perf_counter() - started
            state.train_cpu_s += time.process_time() - started_cpu
            state.steps_timed += 1
            state.step += 1
            state.train_loss.append({"step": state.step, "loss": round(value, 5)})
            bar.set_postfix(loss=f"{value:.3f}")
            bar.update()
            if state.step % max(1, min(options.save_steps, 50)) == 0:
                logger.info("step %d/%d loss %.4f", state.step, total, value)
            if state.step % options.save_steps == 0 or state.step == total:
                save()
                saved_at = state.step
    except KeyboardInterrupt:
        bar.close()
        if state.step == 0:
            raise Interrupted("Interrupted before the first step: nothing to keep; run the command again") from None
        folder = save() if state.step > saved_at else output_dir / f"{CHECKPOINT_PREFIX}{state.step}"
        raise Interrupted(f"Interrupted: kept the checkpoint {folder} (step {state.step} of {total}); "
                          "continue with the same command and --resume") from None
    except torch.OutOfMemoryError:
        raise out_of_memory(options.batch_size) from None
    finally:
        bar.close()
    return state


def out_of_memory(batch_size: int) -> OutOfMemory:
    """The error for a GPU that ran out of memory (training, evaluating or transcribing)."""
    return OutOfMemory(
        f"The GPU ran out of memory at --batch-size {batch_size}: lower --batch-size "
        f"(e.g. --batch-size {max(1, batch_size // 2)}), and --learning-rate a little with it; "
        "gradient checkpointing and mixed precision are already on"
    )


def _save_checkpoint(whisper: Whisper, state: TrainState, extra: dict, output_dir: Path) -> Path:
    """Write checkpoint-STEP atomically (a temporary folder renamed), then drop those no longer needed."""
    import torch

    folder = output_dir / f"{CHECKPOINT_PREFIX}{state.step}"
    staging = output_dir / f".{folder.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    whisper.save(staging)
    torch.save(extra, staging / OPTIMIZER_FILE)
    (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=1) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    keep = {folder.name, f"{CHECKPOINT_PREFIX}{state.best_step}"}
    for old in checkpoints(output_dir):
        if old.name not in keep:
            shutil.rmtree(old)
    return folder
