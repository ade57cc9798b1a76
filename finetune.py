"""Fine-tune Whisper on Korean speech, compare it before and after, and convert it for the app.

    python finetune.py --model openai/whisper-base --dataset Bingsu/zeroth-korean --name base-ko
    python finetune.py --model ./whisper-small --dataset ./my-recordings --name game-ko --max-steps 2000
    python finetune.py --name base-ko --resume ...     # the same command plus --resume continues a run
    WHISPER_MODEL=base-ko python app.py

Writes checkpoints, results.json (loss curve, CER/WER before and after on the same test
utterances) and transcripts.csv to --output-dir (default runs/NAME), then converts the best
checkpoint to CTranslate2 in MODELS_DIR/NAME. Needs requirements-finetune.txt.
See docs/finetuning.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from voiceqna.config import Settings
from voiceqna.errors import VoiceQnAError
from voiceqna.evaluation import positive_int
from voiceqna.evaluation.convert import QUANTIZATIONS, ConversionError

logger = logging.getLogger("finetune")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See docs/finetuning.md.")
    parser.add_argument("--model", default="openai/whisper-base",
                        help="Whisper checkpoint to start from: hub id or folder (default openai/whisper-base)")
    parser.add_argument("--dataset", default="Bingsu/zeroth-korean",
                        help="as evaluate.py takes it: hub name, an audiofolder (audio + metadata.csv with "
                             "file_name,text), a folder saved with save_to_disk, or parquet files "
                             "(default Bingsu/zeroth-korean)")
    parser.add_argument("--name", required=True, help="the converted model's name: MODELS_DIR/NAME, WHISPER_MODEL=NAME")
    parser.add_argument("--output-dir", type=Path, help="checkpoints and results (default runs/NAME)")
    parser.add_argument("--max-steps", type=positive_int, help="optimiser steps (overrides --epochs)")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the training utterances (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="utterances per step (default 8)")
    parser.add_argument("--learning-rate", type=float, default=1e-5, help="peak learning rate (default 1e-5)")
    parser.add_argument("--warmup-steps", type=int, help="linear warm-up (default: a tenth of the steps, at most 500)")
    parser.add_argument("--save-steps", type=positive_int, default=500,
                        help="a checkpoint and a loss on the test utterances every N steps (default 500)")
    parser.add_argument("--test-size", type=float, default=0.1,
                        help="share held out for testing when the data set has one split (default 0.1)")
    parser.add_argument("--train-split", default="train", help="(default train)")
    parser.add_argument("--test-split", default="test", help="(default test)")
    parser.add_argument("--max-train", type=positive_int, help="use only the first N training utterances")
    parser.add_argument("--max-test", type=positive_int, help="use only the first N test utterances")
    parser.add_argument("--seed", type=int, default=0, help="for the split and the batch order (default 0)")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="auto: CUDA (bf16/fp16, gradient checkpointing) when there is a GPU (default)")
    parser.add_argument("--quantization", default="int8", choices=QUANTIZATIONS,
                        help="of the converted model (default int8, for CPUs; float16 for GPUs)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output-dir")
    parser.add_argument("--force", action="store_true",
                        help="replace MODELS_DIR/NAME and start over in an --output-dir that holds a run")
    parser.add_argument("--convert-only", action="store_true",
                        help="only convert the best checkpoint in --output-dir into MODELS_DIR/NAME")
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace, models_dir: Path):
    from voiceqna.evaluation.finetune import FinetuneOptions
    from voiceqna.evaluation.finetune_train import TrainOptions

    train = TrainOptions(batch_size=args.batch_size, learning_rate=args.learning_rate, max_steps=args.max_steps,
                         epochs=args.epochs, warmup_steps=args.warmup_steps, save_steps=args.save_steps,
                         seed=args.seed, device=args.device)
    return FinetuneOptions(
        model=args.model, dataset=args.dataset, name=args.name, output_dir=args.output_dir or Path("runs") / args.name,
        models_dir=models_dir, train=train, test_size=args.test_size, train_split=args.train_split,
        test_split=args.test_split, max_train=args.max_train, max_test=args.max_test,
        quantization=args.quantization, resume=args.resume, force=args.force,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "transformers.generation", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    try:
        import torch
        import transformers

        from voiceqna.evaluation import finetune
        from voiceqna.evaluation.finetune_train import Interrupted, out_of_memory
    except ImportError as exc:
        logger.error("finetune.py needs torch and transformers (%s): pip install -r requirements-finetune.txt", exc)
        return 2
    transformers.utils.logging.set_verbosity_error()  # its generation hints, once per call
    transformers.utils.logging.disable_progress_bar()  # one bar here: the training's
    options = options_from(args, Settings.from_env().models_dir)
    try:
        if args.convert_only:
            model_dir = finetune.convert_only(options)
        else:
            model_dir = finetune.run(options).model_dir
    except Interrupted as exc:
        logger.error("%s", exc)
        return 130
    except KeyboardInterrupt:
        logger.error("Interrupted outside training: the checkpoints written so far are kept in %s "
                     "(--resume continues, --convert-only converts the best)", options.output_dir)
        return 130
    except torch.OutOfMemoryError:
        logger.error("finetune.py: %s", out_of_memory(args.batch_size))
        return 2
    except (VoiceQnAError, ConversionError) as exc:
        logger.error("finetune.py: %s", exc)
        return 2
    sys.stdout.write(f"Converted to {model_dir}. Use it:\n"
                     f"  WHISPER_MODEL={args.name} python app.py\n"
                     f"  python evaluate.py --model {args.name} --dataset {args.dataset}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
