"""Speech test sets for evaluation: (id, encoded audio bytes, reference text) per utterance.

Three kinds of source, all with an audio column and a `text` column:
- a local audiofolder (Hugging Face layout): audio files and a `metadata.csv` or
  `metadata.jsonl` with `file_name` and `text`, at the top or in a folder named after the
  split; read here directly, without `datasets`;
- a data set saved with `save_to_disk` (read with `datasets.load_from_disk`);
- a hub name such as `Bingsu/zeroth-korean`, or a local folder of its files (parquet), read
  with `datasets.load_dataset(..., streaming=True)`, so only the rows used are fetched.

Audio is never decoded by `datasets` (recent versions need `torchcodec` for that): the
column is cast to `Audio(decode=False)` and the bytes go to `voiceqna.audio.decode`.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from voiceqna.errors import VoiceQnAError

logger = logging.getLogger(__name__)

METADATA_FILES = ("metadata.csv", "metadata.jsonl")
_SAVED_MARKERS = ("dataset_dict.json", "state.json")


class DatasetUnavailable(VoiceQnAError):
    """The test set cannot be found, fetched or read; the message says how to fix it."""


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: bytes
    """An encoded audio file (WAV, FLAC, MP3, …) as stored in the data set."""
    text: str
    """The reference transcript."""


@dataclass(frozen=True)
class SpeechSet:
    """A re-iterable test set: every iteration starts from the first utterance."""

    description: str
    size: int | None
    """Number of utterances when known beforehand (streamed hub sets may not say)."""
    _rows: Callable[[], Iterator[Utterance]]

    def __iter__(self) -> Iterator[Utterance]:
        return self._rows()

    def head(self, limit: int | None) -> "SpeechSet":
        """The first `limit` utterances (all of them for None)."""
        if limit is None:
            return self
        size = limit if self.size is None else min(limit, self.size)
        return SpeechSet(f"{self.description}, first {limit}", size, lambda: itertools.islice(self._rows(), limit))


def open_speech_set(source: str, split: str = "test") -> SpeechSet:
    """Open a local audiofolder, a saved data set, a local parquet folder or a hub data set."""
    path = Path(source).expanduser()
    if path.is_dir():
        if any((path / marker).is_file() for marker in _SAVED_MARKERS):
            return _saved_dataset(path, split)
        metadata = _find_metadata(path, split)
        if metadata is not None:
            return _audiofolder(metadata)
        return _streamed(str(path), split, local=True)
    if path.exists():
        raise DatasetUnavailable(f"{source} is a file: give the folder that holds it and its metadata.csv")
    if _looks_local(source):
        raise DatasetUnavailable(
            f"No folder {source}: give an audiofolder (audio files + metadata.csv with file_name,text), "
            "a folder saved with save_to_disk, or a hub name such as Bingsu/zeroth-korean"
        )
    return _streamed(source, split, local=False)


def _looks_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or "\\" in source


# --- audiofolder -------------------------------------------------------------------------


def _find_metadata(folder: Path, split: str) -> Path | None:
    for base in (folder / split, folder):
        for name in METADATA_FILES:
            if (base / name).is_file():
                return base / name
    return None


def _audiofolder(metadata: Path) -> SpeechSet:
    rows = _read_metadata(metadata)
    folder = metadata.parent
    missing = [row["file_name"] for row in rows if not (folder / row["file_name"]).is_file()]
    if missing:
        raise DatasetUnavailable(
            f"{len(missing)} audio file(s) named in {metadata} are missing, e.g. {folder / missing[0]}"
        )

    def utterances() -> Iterator[Utterance]:
        for row in rows:
            audio_path = folder / row["file_name"]
            yield Utterance(id=row["file_name"], audio=audio_path.read_bytes(), text=row["text"])

    return SpeechSet(str(folder), len(rows), utterances)


def _read_metadata(metadata: Path) -> list[dict[str, str]]:
    with open(metadata, encoding="utf-8-sig") as handle:
        if metadata.suffix == ".csv":
            rows = list(csv.DictReader(handle))
        else:
            rows = [json.loads(line) for line in handle if line.strip()]
    if not rows:
        raise DatasetUnavailable(f"{metadata} lists no utterances: add rows of file_name,text")
    for number, row in enumerate(rows, start=2 if metadata.suffix == ".csv" else 1):
        if not isinstance(row.get("file_name"), str) or not isinstance(row.get("text"), str):
            raise DatasetUnavailable(
                f"{metadata}, row {number}: every row needs file_name and text (found {sorted(row)})"
            )
    return rows


# --- datasets (saved, hub, parquet) ------------------------------------------------------


def _saved_dataset(path: Path, split: str) -> SpeechSet:
    import datasets

    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DatasetUnavailable(f"{path} has no split {split!r}: use --split with one of {', '.join(loaded)}")
        loaded = loaded[split]
    table = _undecoded(loaded, str(path))
    return SpeechSet(f"{path} ({split})", len(table), lambda: _rows_of(table))


def _streamed(source: str, split: str, local: bool) -> SpeechSet:
    """A hub data set, or a local folder of its files (parquet), read row by row."""
    import datasets

    try:
        stream = datasets.load_dataset(source, split=split, streaming=True)
    except (ConnectionError, OSError) as exc:
        if local:
            raise DatasetUnavailable(
                f"Could not read {source} ({type(exc).__name__}: {exc}): give an audiofolder (audio files + "
                "metadata.csv with file_name,text), a folder saved with save_to_disk, or a data set's parquet files"
            ) from None
        raise DatasetUnavailable(
            f"Could not fetch {source!r} ({type(exc).__name__}: {exc}). Offline? Point --dataset at a local "
            "copy: a folder of audio files with metadata.csv (file_name,text), a data set saved with "
            "save_to_disk, or the data set's files downloaded while online "
            f"(hf download {source} --repo-type dataset --include '*{split}*' --local-dir DIR, then --dataset DIR)."
        ) from None
    except ValueError as exc:  # an unknown split, an unreadable file
        raise DatasetUnavailable(f"Could not read {source!r}: {exc}") from None
    stream = _undecoded(stream, source)
    splits = getattr(stream.info, "splits", None) or {}
    size = splits[split].num_examples if split in splits else None
    return SpeechSet(f"{source} ({split})", size or None, lambda: _rows_of(stream))


def _undecoded(table, source: str):
    """The table with its audio column as raw bytes, checked for the columns we need."""
    import datasets

    columns = list(table.features or {})
    for needed in ("audio", "text"):
        if needed not in columns:
            raise DatasetUnavailable(f"{source} has no {needed!r} column (it has {', '.join(columns)})")
    return table.cast_column("audio", datasets.Audio(decode=False))


def _rows_of(table) -> Iterator[Utterance]:
    for index, row in enumerate(table):
        audio = row["audio"] or {}
        data, path = audio.get("bytes"), audio.get("path")
        if data is None and path:
            data = Path(path).read_bytes()
        yield Utterance(id=path or str(index), audio=data or b"", text=row["text"] or "")
