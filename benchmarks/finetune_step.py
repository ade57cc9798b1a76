"""What does a fine-tuning step cost on this machine's CPU, and is Seq2SeqTrainer any faster than finetune.py's loop?

    python benchmarks/finetune_step.py          # writes benchmarks/results/finetune-step.json
    python benchmarks/finetune_step.py --quick  # the test model only, 3 steps: finetune-step-quick.json

Whisper architectures with random weights (the hub's checkpoints cannot be downloaded here;
the cost of a step does not depend on the weights' values), built with transformers and the
bundled base's tokenizer: the tests' tiny model, whisper-tiny's and whisper-base's shapes.
Each is trained for a few steps on the real Korean recordings, batch size 8 unless --batch-size,
by finetune.py's own loop (voiceqna.evaluation.finetune_train.train: seconds per step, checkpoints
and evaluation excluded) and, for the two small ones and when accelerate is installed, by
transformers' Seq2SeqTrainer on the same examples and collation (seconds from the start of
training to the end of the last step, over the steps): one untimed step of each, then a round
of each in turn. Both as wall seconds and as this process's CPU seconds, which other processes'
load barely changes: the comparison is made on CPU seconds. CPU only: no GPU is lent to this
machine.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import common
from voiceqna.config import PROJECT_ROOT
from voiceqna.engines import asr_whisper_models
from voiceqna.evaluation import finetune_model, finetune_train
from voiceqna.evaluation.finetune_data import Example, Splits
from voiceqna.textnorm import normalize

logger = logging.getLogger("finetune_step")

SCRIPT = "finetune_step"
NAME = "finetune-step"
SPECIAL = dict(decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257)
ARCHITECTURES = {
    "test-tiny": dict(d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                      decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128),
    "whisper-tiny": dict(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                         decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536),
    "whisper-base": dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                         decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048),
}
"""Shapes as in openai/whisper-tiny and openai/whisper-base's config.json; test-tiny is tests/test_finetune.py's."""
PLAN = {"test-tiny": (4, 3, True), "whisper-tiny": (3, 2, True), "whisper-base": (2, 1, False)}
"""Steps a round, rounds, and whether Seq2SeqTrainer is timed too: whisper-base takes minutes a
step here, so it is timed by the loop alone, for the cost of a step."""


def build(architecture: str, folder: Path) -> Path:
    """A random Whisper of that shape, saved as a checkpoint folder finetune.py can load."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperTokenizerFast

    config = WhisperConfig(vocab_size=51865, num_mel_bins=80, max_source_positions=1500, max_target_positions=448,
                           **ARCHITECTURES[architecture], **SPECIAL)
    torch.manual_seed(0)
    WhisperForConditionalGeneration(config).save_pretrained(folder)
    base = Path(asr_whisper_models.resolve("base", PROJECT_ROOT / "models"))
    WhisperTokenizerFast(tokenizer_file=str(base / "tokenizer.json")).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


def examples(count: int | None) -> list[Example]:
    return [Example(c.name, c.wav, normalize(c.text), c.duration_s) for c in common.real_clips(count)]


def loop_per_step(checkpoint: Path, data: list[Example], batch_size: int, steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per step of finetune.py's loop."""
    whisper = finetune_model.load(str(checkpoint))
    options = finetune_train.TrainOptions(batch_size=batch_size, learning_rate=1e-5, max_steps=steps,
                                          save_steps=10 * steps, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        state = finetune_train.train(whisper, Splits(data, data[:1], "bench"), options, Path(folder))
    return state.seconds_per_step, state.cpu_seconds_per_step


def trainer_per_step(checkpoint: Path, data: list[Example], batch_size: int, steps: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) per step of Seq2SeqTrainer on the same examples, collated by
    the same functions."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

    whisper = finetune_model.load(str(checkpoint))
    marks: list[tuple[float, float]] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            marks.append((time.perf_counter(), time.process_time()))

        def on_step_end(self, *args, **kwargs):
            marks.append((time.perf_counter(), time.process_time()))

    def collate(batch: list[Example]) -> dict:
        return {"input_features": finetune_model.features(whisper, batch),
                "labels": finetune_model.labels(whisper, batch)}

    with tempfile.TemporaryDirectory() as folder:
        arguments = Seq2SeqTrainingArguments(
            output_dir=folder, per_device_train_batch_size=batch_size, learning_rate=1e-5, max_steps=steps,
            warmup_steps=0, save_strategy="no", eval_strategy="no", report_to=[], logging_steps=10 * steps,
            remove_unused_columns=False, dataloader_num_workers=0, use_cpu=True, disable_tqdm=True, seed=0,
        )
        trainer = Seq2SeqTrainer(model=whisper.model, args=arguments, train_dataset=data, data_collator=collate,
                                 callbacks=[Clock()])
        trainer.train()
    return (marks[-1][0] - marks[0][0]) / steps, (marks[-1][1] - marks[0][1]) / steps


def row_median(rounds: list[tuple[float, float]], index: int) -> float:
    return statistics.median(r[index] for r in rounds)


def per_step(rounds: list[tuple[float, float]]) -> dict:
    """Median wall and CPU seconds per step over the rounds, and each round's."""
    return {"wall_s": round(row_median(rounds, 0), 3), "cpu_s": round(row_median(rounds, 1), 3),
            "rounds": [{"wall_s": round(w, 3), "cpu_s": round(c, 3)} for w, c in rounds]}


def markdown(head: dict, result: dict) -> str:
    rows = []
    for architecture, row in result["architectures"].items():
        rows.append([architecture, f"{row['parameters_m']:.1f}", f"{row['steps']} x {row['rounds']}",
                     f"{row['loop']['cpu_s']:.2f}",
                     f"{row['loop']['wall_s']:.2f}", common.fmt(row.get("trainer", {}).get("cpu_s")),
                     common.fmt(row.get("trainer", {}).get("wall_s")), common.fmt(row.get("trainer_over_loop_cpu"))])
    return "\n".join([
        f"Seconds per fine-tuning step on CPU ({result['threads']} threads), batch size {result['batch_size']}, "
        f"median over the rounds. {common.header_line(head)}", "",
        common.table(["architecture (random weights)", "parameters (M)", "steps x rounds", "loop CPU s/step",
                      "loop wall s/step",
                      "Trainer CPU s/step", "Trainer wall s/step", "Trainer / loop (CPU)"], rows), "",
        "CPU seconds: this process's, all threads (barely changed by other processes' load); wall seconds: "
        f"what a user waits on this machine at its load. Seq2SeqTrainer: {result['trainer']}."])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "the test model only, 3 steps, 1 round", NAME)
    parser.add_argument("--architecture", action="append", choices=list(ARCHITECTURES),
                        help="repeat to choose (default: all; quick: test-tiny)")
    parser.add_argument("--batch-size", type=int, default=8, help="utterances per step (default 8)")
    parser.add_argument("--steps", type=int, help="steps per round (default: PLAN; quick 3)")
    parser.add_argument("--rounds", type=int, help="rounds per trainer, alternating (default: PLAN; quick 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(SCRIPT, parse_args, argv)
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    architectures = args.architecture or (["test-tiny"] if args.quick else list(ARCHITECTURES))
    data = examples(None)
    try:
        import accelerate  # noqa: F401  (what Seq2SeqTrainer needs)
        trainer_note = f"transformers {transformers.__version__}, accelerate {accelerate.__version__}"
    except ImportError:
        trainer_note = "not measured (pip install accelerate to include it)"
    result = {"batch_size": args.batch_size, "clips": len(data),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "trainer": trainer_note,
              "architectures": {}}
    with tempfile.TemporaryDirectory() as folder:
        for architecture in architectures:
            checkpoint = build(architecture, Path(folder) / architecture)
            steps, rounds, compare = PLAN[architecture]
            steps, rounds = args.steps or (3 if args.quick else steps), args.rounds or (1 if args.quick else rounds)
            compare = compare and "not measured" not in trainer_note
            loop, trainer = [], []
            if compare:  # one untimed step of each first
                loop_per_step(checkpoint, data, args.batch_size, 1)
                trainer_per_step(checkpoint, data, args.batch_size, 1)
            for _ in range(rounds):
                loop.append(loop_per_step(checkpoint, data, args.batch_size, steps))
                if compare:
                    trainer.append(trainer_per_step(checkpoint, data, args.batch_size, steps))
                logger.info("%s: loop %s, trainer %s (wall s, CPU s per step)", architecture, loop, trainer)
            parameters = sum(p.numel() for p in finetune_model.load(str(checkpoint)).model.parameters())
            row = {"parameters_m": round(parameters / 1e6, 1), "steps": steps, "rounds": rounds, "loop": per_step(loop)}
            if trainer:
                row["trainer"] = per_step(trainer)
                row["trainer_over_loop_cpu"] = round(row["trainer"]["cpu_s"] / row["loop"]["cpu_s"], 2)
            result["architectures"][architecture] = row
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
