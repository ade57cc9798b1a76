"""Opening test sets: audiofolders (CSV, JSONL, split folders), saved data sets, parquet folders,
and the errors a user gets for each wrong input."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from voiceqna.audio import decode, encode_wav
from voiceqna.evaluation.datasets import DatasetUnavailable, open_speech_set

TEXTS = ["안녕하세요.", "오늘 날씨가 좋네요!", "감사합니다"]


def tone(seconds: float, hz: float) -> bytes:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return encode_wav(0.3 * np.sin(2 * np.pi * hz * t))


@pytest.fixture
def clips() -> list[tuple[str, bytes, str]]:
    return [(f"clip{i}.wav", tone(0.5 + 0.25 * i, 220 * (i + 1)), text) for i, text in enumerate(TEXTS)]


def write_audiofolder(folder: Path, clips, metadata: str = "metadata.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, audio, _ in clips:
        (folder / name).write_bytes(audio)
    if metadata.endswith(".csv"):
        with open(folder / metadata, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "text"])
            writer.writerows((name, text) for name, _, text in clips)
    else:
        (folder / metadata).write_text(
            "".join(json.dumps({"file_name": n, "text": t}, ensure_ascii=False) + "\n" for n, _, t in clips),
            encoding="utf-8",
        )
    return folder


def as_tuples(speech_set):
    return [(u.id, u.audio, u.text) for u in speech_set]


def test_audiofolder_with_csv(tmp_path, clips):
    speech_set = open_speech_set(str(write_audiofolder(tmp_path / "set", clips)))
    assert speech_set.size == 3
    assert as_tuples(speech_set) == clips
    assert as_tuples(speech_set) == clips, "a second pass starts again from the first utterance"
    assert decode(next(iter(speech_set)).audio).size == 8000


def test_audiofolder_with_jsonl_in_a_split_folder(tmp_path, clips):
    write_audiofolder(tmp_path / "set" / "test", clips[:2], "metadata.jsonl")
    write_audiofolder(tmp_path / "set" / "train", clips[2:], "metadata.jsonl")
    assert as_tuples(open_speech_set(str(tmp_path / "set"), "test")) == clips[:2]
    assert as_tuples(open_speech_set(str(tmp_path / "set"), "train")) == clips[2:]


def test_head_limits_the_utterances(tmp_path, clips):
    speech_set = open_speech_set(str(write_audiofolder(tmp_path / "set", clips))).head(2)
    assert speech_set.size == 2
    assert [u.text for u in speech_set] == TEXTS[:2]
    assert open_speech_set(str(tmp_path / "set")).head(None).size == 3


def hf_dataset(clips, text_column: str = "text"):
    from datasets import Audio, Dataset, Features, Value

    features = Features({"audio": {"bytes": Value("binary"), "path": Value("string")}, text_column: Value("string")})
    table = Dataset.from_dict(
        {"audio": [{"bytes": a, "path": n} for n, a, _ in clips], text_column: [t for _, _, t in clips]},
        features=features,
    )
    # Casting (not encoding) keeps datasets away from torchcodec, which is not installed.
    return table.cast_column("audio", Audio(decode=False))


def test_saved_dataset_dict_and_its_splits(tmp_path, clips):
    from datasets import DatasetDict

    DatasetDict({"test": hf_dataset(clips), "train": hf_dataset(clips[:1])}).save_to_disk(str(tmp_path / "saved"))
    speech_set = open_speech_set(str(tmp_path / "saved"), "test")
    assert speech_set.size == 3
    assert as_tuples(speech_set) == clips
    with pytest.raises(DatasetUnavailable, match="no split 'validation'.*test, train"):
        open_speech_set(str(tmp_path / "saved"), "validation")


def test_saved_single_dataset(tmp_path, clips):
    hf_dataset(clips).save_to_disk(str(tmp_path / "saved"))
    assert as_tuples(open_speech_set(str(tmp_path / "saved"))) == clips


def test_folder_of_parquet_files_as_downloaded_from_the_hub(tmp_path, clips):
    hf_dataset(clips).to_parquet(str(tmp_path / "zeroth" / "data" / "test-00000-of-00001.parquet"))
    hf_dataset(clips[:1]).to_parquet(str(tmp_path / "zeroth" / "data" / "train-00000-of-00001.parquet"))
    assert as_tuples(open_speech_set(str(tmp_path / "zeroth"), "test")) == clips
    assert [u.text for u in open_speech_set(str(tmp_path / "zeroth"), "train")] == TEXTS[:1]


def test_a_set_without_a_text_column_names_its_columns(tmp_path, clips):
    hf_dataset(clips, text_column="sentence").save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DatasetUnavailable, match="no 'text' column.*audio, sentence"):
        open_speech_set(str(tmp_path / "saved"))


def test_missing_audio_file_is_named(tmp_path, clips):
    folder = write_audiofolder(tmp_path / "set", clips)
    (folder / "clip1.wav").unlink()
    with pytest.raises(DatasetUnavailable, match=r"1 audio file\(s\).*clip1\.wav"):
        open_speech_set(str(folder))


def test_metadata_without_text_is_refused(tmp_path, clips):
    folder = write_audiofolder(tmp_path / "set", clips)
    (folder / "metadata.csv").write_text("file_name,transcription\nclip0.wav,안녕\n", encoding="utf-8")
    with pytest.raises(DatasetUnavailable, match="row 2: every row needs file_name and text"):
        open_speech_set(str(folder))


def test_empty_metadata_is_refused(tmp_path, clips):
    folder = write_audiofolder(tmp_path / "set", clips)
    (folder / "metadata.csv").write_text("file_name,text\n", encoding="utf-8")
    with pytest.raises(DatasetUnavailable, match="lists no utterances"):
        open_speech_set(str(folder))


def test_missing_local_folder_is_not_sent_to_the_hub(tmp_path):
    with pytest.raises(DatasetUnavailable, match="No folder .*metadata.csv"):
        open_speech_set(str(tmp_path / "not-there"))
    with pytest.raises(DatasetUnavailable, match="No folder"):
        open_speech_set("./korean-read-speach")


def test_a_file_instead_of_a_folder(tmp_path, clips):
    folder = write_audiofolder(tmp_path / "set", clips)
    with pytest.raises(DatasetUnavailable, match="is a file: give the folder"):
        open_speech_set(str(folder / "metadata.csv"))


def test_a_folder_without_any_data(tmp_path):
    with pytest.raises(DatasetUnavailable, match="Could not read .*give an audiofolder"):
        open_speech_set(str(tmp_path))
