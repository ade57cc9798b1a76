"""Bring your own model: convert a Hugging Face Whisper checkpoint to CTranslate2 in models/<name>.

    pip install -r requirements-convert.txt
    python -m voiceqna.convert aiegoo/whisper-tiny-ko --quantization int8      # -> models/whisper-tiny-ko
    python -m voiceqna.convert ./my-finetune --name my-ko
    WHISPER_MODEL=my-ko python app.py            # or: python evaluate.py --model my-ko

What `ct2-transformers-converter --copy_files tokenizer.json preprocessor_config.json` does,
and more: tokenizer.json and preprocessor_config.json are saved from the checkpoint's own
tokenizer and feature extractor as transformers loads them; the language token ids are filled
in when the checkpoint's generation config lacks them; and the model is written to a
temporary folder that is renamed only when everything succeeded, so a failed conversion
leaves nothing behind.
Needs torch and transformers (requirements-convert.txt), not needed to run the app.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from voiceqna.engines.asr_whisper_models import BUNDLED_BASE_NAMES, is_ct2_model_dir

logger = logging.getLogger(__name__)

QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ConversionError(Exception):
    """The conversion cannot start or did not succeed; the message says what to do."""


def default_name(source: str) -> str:
    """models/<name> for a hub id or a folder: its last path component."""
    return Path(source.rstrip("/\\")).name


def target(name: str, models_dir: Path, quantization: str = "int8", force: bool = False) -> Path:
    """models_dir/name, checked before any work: ConversionError for a bad name or quantization,
    or a folder that exists (unless `force`)."""
    if not _NAME.match(name) or name in BUNDLED_BASE_NAMES:
        raise ConversionError(
            f"{name!r} cannot be a model name: use letters, digits, '.', '_' or '-' "
            f"(and not {' or '.join(BUNDLED_BASE_NAMES)}, which name the bundled model)"
        )
    if quantization not in QUANTIZATIONS:
        raise ConversionError(f"quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}")
    folder = models_dir / name
    if folder.exists() and not force:
        raise ConversionError(f"{folder} already exists: pass --force to replace it, or choose another --name")
    return folder


def convert(source: str, name: str, models_dir: Path, quantization: str = "int8", force: bool = False) -> Path:
    """Convert `source` (hub id or local folder) into models_dir/name and return that folder."""
    target_dir = target(name, models_dir, quantization, force)
    try:
        import transformers
        from ctranslate2.converters import TransformersConverter
    except ImportError as exc:
        raise ConversionError(
            f"Converting needs torch and transformers ({exc}): pip install -r requirements-convert.txt"
        ) from None

    models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models_dir))
    try:
        staged = work / "model"
        logger.info("Converting %s to CTranslate2 (%s)", source, quantization)
        try:
            model_type = transformers.AutoConfig.from_pretrained(source).model_type
            if model_type != "whisper":
                raise ConversionError(f"{source!r} is a {model_type} model, not Whisper: give a Whisper checkpoint")
            TransformersConverter(source).convert(str(staged), quantization=quantization)
            _write_preprocessing(transformers, source, staged, work / "hf")
        except (OSError, ValueError, KeyError) as exc:
            raise ConversionError(
                f"Could not convert {source!r} ({type(exc).__name__}: {exc}). Give a Whisper checkpoint: "
                "a hub id (online) or a folder with config.json, the weights and the tokenizer files."
            ) from None
        _fill_language_ids(staged)
        if not is_ct2_model_dir(staged):
            raise ConversionError(f"The conversion of {source!r} wrote no model.bin; see the log above")
        if target_dir.exists():
            shutil.rmtree(target_dir)
        os.replace(staged, target_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("Wrote %s: use it with WHISPER_MODEL=%s or evaluate.py --model %s", target_dir, name, name)
    return target_dir


def _write_preprocessing(transformers, source: str, staged: Path, scratch: Path) -> None:
    """tokenizer.json (always) and preprocessor_config.json (when the checkpoint has one)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(scratch)
    if not (scratch / "tokenizer.json").is_file():
        raise ConversionError(f"The tokenizer of {source!r} could not be saved as tokenizer.json")
    shutil.copyfile(scratch / "tokenizer.json", staged / "tokenizer.json")
    try:
        extractor = transformers.WhisperFeatureExtractor.from_pretrained(source)
    except OSError:
        logger.warning("%s has no preprocessor_config.json: faster-whisper will assume 80 mel bins", source)
        return
    extractor.save_pretrained(scratch)
    shutil.copyfile(scratch / "preprocessor_config.json", staged / "preprocessor_config.json")


def _fill_language_ids(model_dir: Path) -> None:
    """Fill config.json's lang_ids from the tokenizer when the checkpoint did not list them."""
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("lang_ids"):
        return
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    vocabulary = json.loads((model_dir / "tokenizer.json").read_text())
    ids = {token["content"]: token["id"] for token in vocabulary.get("added_tokens", [])}
    config["lang_ids"] = sorted(ids[f"<|{code}|>"] for code in LANGUAGES if f"<|{code}|>" in ids)
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    logger.info("Filled %d language ids from the tokenizer", len(config["lang_ids"]))


def main(argv: list[str] | None = None) -> int:
    from voiceqna.config import Settings

    parser = argparse.ArgumentParser(
        prog="python -m voiceqna.convert", description="Convert a Hugging Face Whisper checkpoint to CTranslate2."
    )
    parser.add_argument("source", help="hub id (e.g. aiegoo/whisper-tiny-ko) or a local checkpoint folder")
    parser.add_argument("--name", help="folder name under models/ (default: the source's last path component)")
    parser.add_argument("--quantization", default="int8", choices=QUANTIZATIONS,
                        help="weight type (default int8, for CPU; float16 for a GPU)")
    parser.add_argument("--force", action="store_true", help="replace models/<name> if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models_dir = Settings.from_env().models_dir
    try:
        convert(args.source, args.name or default_name(args.source), models_dir, args.quantization, args.force)
    except ConversionError as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
