"""Training and test utterances for fine-tuning: split, decoded once, filtered and normalised.

The data sets are the ones evaluate.py reads (voiceqna.evaluation.datasets: an audiofolder, a
folder saved with save_to_disk, parquet files or a hub name). A set with a `train` and a `test`
split is used as it is; a set with one split is split here, with a seed, into train and test.
Audio is decoded by voiceqna.audio (16 kHz mono); the text is normalised as evaluate.py's
metrics normalise references (voiceqna.textnorm.normalize). Utterances longer than 30 s (the
length of Whisper's window), with an empty text or with audio that cannot be decoded are
skipped and counted.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.errors import AudioTooLarge, BadAudio
from voiceqna.evaluation.datasets import METADATA_FILES, DatasetUnavailable, SpeechSet, open_speech_set
from voiceqna.textnorm import normalize

logger = logging.getLogger(__name__)

MAX_SECONDS = 30.0
"""Whisper sees 30 s at a time; a longer utterance would be cut and its text would not match."""


@dataclass(frozen=True)
class Example:
    id: str
    audio: bytes
    """The encoded audio file as stored in the data set (decoded again for each batch: the
    encoded form is the smallest to keep in memory)."""
    text: str
    """The normalised transcript (voiceqna.textnorm.normalize)."""
    duration_s: float


@dataclass
class Skipped:
    """Utterances left out, by reason."""

    too_long: int = 0
    """Longer than 30 s."""
    empty_text: int = 0
    """No text left after normalisation."""
    bad_audio: int = 0
    """Audio that voiceqna.audio could not decode."""

    @property
    def total(self) -> int:
        return self.too_long + self.empty_text + self.bad_audio


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    test: list[Example]
    description: str
    """Where they came from, and how they were split."""
    skipped: Skipped = field(default_factory=Skipped)

    def sizes(self) -> dict:
        return {
            "train": len(self.train),
            "test": len(self.test),
            "train_audio_s": round(sum(e.duration_s for e in self.train), 1),
            "test_audio_s": round(sum(e.duration_s for e in self.test), 1),
            "skipped": vars(self.skipped) | {"total": self.skipped.total},
            "description": self.description,
        }


def load_splits(source: str, test_size: float = 0.1, seed: int = 0, train_split: str = "train",
                test_split: str = "test", max_train: int | None = None, max_test: int | None = None) -> Splits:
    """The train and test examples of `source`. DatasetUnavailable (saying the fix) when the set
    cannot be read, has no audio or no transcripts, or leaves nothing to train or test on."""
    skipped = Skipped()
    if _has_split(source, test_split):
        train = _examples(open_speech_set(source, train_split).head(max_train), skipped)
        test = _examples(open_speech_set(source, test_split).head(max_test), skipped)
        description = f"{source}: splits {train_split} and {test_split}"
    else:
        everything = _examples(open_speech_set(source, train_split), skipped)
        train, test = split(everything, test_size, seed)
        train, test = train[:max_train], test[:max_test]
        description = f"{source}: one split, {test_size:g} held out for testing (seed {seed})"
    if not train:
        raise DatasetUnavailable(f"{source} leaves no utterance to train on ({_why(skipped)})")
    if not test:
        raise DatasetUnavailable(f"{source} leaves no utterance to test on ({_why(skipped)}): raise --test-size")
    logger.info("%s: %d to train on, %d to test on, %d skipped (%s)", description, len(train), len(test),
                skipped.total, _why(skipped))
    return Splits(train, test, description, skipped)


def split(examples: list[Example], test_size: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded shuffle, then the first `test_size` share (at least one) held out for testing."""
    if not 0 < test_size < 1:
        raise DatasetUnavailable(f"--test-size {test_size}: give a share between 0 and 1, e.g. 0.1")
    shuffled = examples[:]
    random.Random(seed).shuffle(shuffled)
    held_out = max(1, round(len(shuffled) * test_size)) if len(shuffled) > 1 else 0
    return shuffled[held_out:], shuffled[:held_out]


def _has_split(source: str, name: str) -> bool:
    """Whether `source` has a split of that name (an audiofolder: a sub-folder with metadata)."""
    path = Path(source).expanduser()
    if path.is_dir() and not any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json")):
        if any((path / name / meta).is_file() for meta in METADATA_FILES):
            return True
        if any((path / meta).is_file() for meta in METADATA_FILES):
            return False
    if (path / "state.json").is_file():  # one data set saved with save_to_disk: no splits
        return False
    try:
        open_speech_set(source, name)
    except DatasetUnavailable:
        return False
    return True


def _examples(speech_set: SpeechSet, skipped: Skipped) -> list[Example]:
    from tqdm import tqdm

    out = []
    for utterance in tqdm(speech_set, total=speech_set.size, desc="reading", unit="utt", disable=None):
        text = normalize(utterance.text)
        if not text:
            skipped.empty_text += 1
            continue
        try:
            samples = decode(utterance.audio, max_seconds=MAX_SECONDS)
        except AudioTooLarge:
            skipped.too_long += 1
            continue
        except BadAudio as exc:  # EmptyAudio too
            logger.warning("Skipping %s: %s", utterance.id, exc)
            skipped.bad_audio += 1
            continue
        out.append(Example(utterance.id, utterance.audio, text, samples.size / SAMPLE_RATE))
    return out


def _why(skipped: Skipped) -> str:
    return (f"{skipped.too_long} longer than {MAX_SECONDS:g} s, {skipped.empty_text} with an empty text, "
            f"{skipped.bad_audio} with audio that could not be decoded")
