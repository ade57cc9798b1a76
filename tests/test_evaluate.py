"""evaluate.py end to end, as a user runs it: the real base model on the real Korean read speech
(once per module), a comparison of two compute types on espeak-ng clips, and the offline message."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import espeak_wav
from tests.tiers import tier
from voiceqna.evaluation.clips import READ_SPEECH
from voiceqna.config import PROJECT_ROOT
from voiceqna.textnorm import compact, normalize, spoken

OUTPUTS = ("results.json", "utterances.csv", "results.md", "cer_vs_rtf.png")


def run_evaluate(*args: str, **env: str) -> subprocess.CompletedProcess:
    """python evaluate.py with the app's recognizer settings fixed by the environment (not .env)."""
    environ = dict(os.environ, WHISPER_MODEL="base", WHISPER_DEVICE="cpu", WHISPER_COMPUTE_TYPE="int8",
                   WHISPER_BEAM_SIZE="1", MODELS_DIR=str(PROJECT_ROOT / "models"), **env)
    return subprocess.run([sys.executable, "evaluate.py", *args], cwd=PROJECT_ROOT, env=environ,
                          capture_output=True, text=True, timeout=1200)


def read_outputs(folder: Path) -> tuple[dict, list[dict], str]:
    report = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    with open(folder / "utterances.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return report, rows, (folder / "results.md").read_text(encoding="utf-8")


def assert_png(path: Path) -> None:
    from matplotlib import image

    pixels = image.imread(path)
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
    assert pixels[..., :3].std() > 0.05, "the plot is blank"


def assert_consistent(run: dict, rows: list[dict]) -> None:
    """The headline rates are what the per-utterance rows add up to, and what jiwer computes."""
    import jiwer

    assert run["n"] == len(rows)
    chars = sum(int(r["char_errors"]) for r in rows) / sum(int(r["reference_chars"]) for r in rows)
    words = sum(int(r["word_errors"]) for r in rows) / sum(int(r["reference_words"]) for r in rows)
    assert run["cer"] == pytest.approx(chars)
    assert run["wer"] == pytest.approx(words)
    refs, hyps = [r["reference"] for r in rows], [r["hypothesis"] for r in rows]
    assert run["cer"] == pytest.approx(jiwer.cer([compact(r) for r in refs], [compact(h) for h in hyps]))
    assert run["wer"] == pytest.approx(jiwer.wer([normalize(r) for r in refs], [normalize(h) for h in hyps]))
    spoken_chars = sum(int(r["spoken_char_errors"]) for r in rows) / sum(int(r["spoken_reference_chars"]) for r in rows)
    assert run["cer_numbers_read"] == pytest.approx(spoken_chars)
    assert run["cer_numbers_read"] == pytest.approx(
        jiwer.cer([compact(spoken(r)) for r in refs], [compact(spoken(h)) for h in hyps]))
    inserted = sum(int(r["char_insertions"]) for r in rows) / sum(int(r["reference_chars"]) for r in rows)
    assert run["insertion_rate"] == pytest.approx(inserted)
    repeated = [r for r in rows if r["repeated"]]
    assert run["repetitions"] == len(repeated) and run["repetition_rate"] == pytest.approx(len(repeated) / len(rows))
    for r in repeated:
        assert compact(r["repeated"]) * 2 in compact(r["hypothesis"])
    assert math.isfinite(run["rtf"]) and run["rtf"] > 0
    assert run["audio_s"] == pytest.approx(sum(float(r["duration_s"]) for r in rows), abs=0.01)
    latency = run["latency_s"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p95"] <= latency["p99"]


@pytest.fixture(scope="module")
@tier("model")
def real_run(tmp_path_factory, read_speech):
    output = tmp_path_factory.mktemp("eval-real")
    result = run_evaluate("--dataset", str(READ_SPEECH), "--output", str(output))
    assert result.returncode == 0, result.stderr[-3000:]
    return output, result


@pytest.mark.slow
def test_real_read_speech_with_the_app_recognizer(real_run):
    output, result = real_run
    for name in OUTPUTS:
        assert (output / name).is_file(), name
    report, rows, table = read_outputs(output)
    (run,) = report["runs"]
    with open(READ_SPEECH / "metadata.csv", encoding="utf-8") as handle:
        expected = list(csv.DictReader(handle))
    assert [r["reference"] for r in rows] == [e["text"] for e in expected]
    assert [r["id"] for r in rows] == [e["file_name"] for e in expected]
    assert run["n"] == 30 and run["skipped"] == []
    # faster-whisper's default call gets CER ~0.12 here, the app's greedy configuration 0.13.
    assert 0.06 < run["cer"] < 0.2, run["cer"]
    assert 0.2 < run["wer"] < 0.55, run["wer"]
    assert run["cer"] < run["wer"]
    assert sum(1 for r in rows if r["hypothesis"].strip()) == 30, "every clip is speech"
    assert run["settings"]["model"] == "base"
    assert run["settings"]["compute_type"] == "int8" and run["settings"]["beam_size"] == 1
    assert_consistent(run, rows)
    assert run["repetition_rate"] == 0, [r["hypothesis"] for r in rows if r["repeated"]]
    assert f"| {run['label']} | 30 | {run['cer']:.3f} | {run['cer_numbers_read']:.3f} | {run['wer']:.3f} | 0.000 |" in table
    assert table in result.stdout
    assert_png(output / "cer_vs_rtf.png")


@pytest.fixture(scope="module")
def espeak_set(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("espeak-set")
    sentences = ["안녕하세요", "오늘 날씨가 좋네요", "감사합니다", "이것은 사용되지 않는 문장입니다"]
    rows = []
    for i, text in enumerate(sentences):
        espeak_wav(text, folder / f"s{i}.wav", rate_wpm=110)
        rows.append(json.dumps({"file_name": f"s{i}.wav", "text": text}, ensure_ascii=False))
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


@pytest.mark.model
def test_compute_types_compared_in_one_run(espeak_set, tmp_path):
    result = run_evaluate("--dataset", str(espeak_set), "--limit", "3", "--compute-type", "int8",
                          "--compute-type", "float32", "--batch-size", "2", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report, rows, table = read_outputs(tmp_path)
    assert [r["settings"]["compute_type"] for r in report["runs"]] == ["int8", "float32"]
    assert len({r["label"] for r in report["runs"]}) == 2
    for run in report["runs"]:
        assert run["n"] == 3, "--limit 3 of 4 clips"
        assert run["settings"]["batch_size"] == 2 and run["settings"]["workers"] == 2
        assert_consistent(run, [r for r in rows if r["run"] == run["label"]])
        assert run["label"] in table
    assert [r["reference"] for r in rows[:3]] == ["안녕하세요", "오늘 날씨가 좋네요", "감사합니다"]
    assert_png(tmp_path / "cer_vs_rtf.png")


@pytest.mark.model
def test_the_default_call_runs_beside_the_app_on_the_same_clips(read_speech, tmp_path):
    result = run_evaluate("--dataset", str(READ_SPEECH), "--limit", "4", "--recognizer", "default",
                          "--recognizer", "app", "--beam-size", "1", "--beam-size", "2", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    report, rows, table = read_outputs(tmp_path)
    kinds = [(r["settings"]["recognizer"], r["settings"]["beam_size"]) for r in report["runs"]]
    assert kinds == [("default", 1), ("app", 1), ("app", 2)], "one default run per model, whatever the beam sizes"
    default, app = report["runs"][0], report["runs"][1]
    assert default["label"].startswith("default call: base") and default["label"] != app["label"]
    for run in report["runs"]:
        run_rows = [r for r in rows if r["run"] == run["label"]]
        assert [r["id"] for r in run_rows] == [c.path.name for c in read_speech[:4]]
        assert_consistent(run, run_rows)
        assert run["label"] in table
        assert run["cer"] < 0.4, run  # both recognise these clips; a broken run gives ~1
    assert default["settings"]["compute_type"] == app["settings"]["compute_type"] == "int8"


def test_window_beam_and_vad_threshold_each_make_a_run_and_are_named_in_its_label():
    """What benchmarks/levers.py and vad.py compared, as evaluate.py's flags (no model loaded)."""
    import evaluate
    from voiceqna.config import Settings

    args = evaluate.parse_args(["--recognizer", "default", "--recognizer", "app", "--window-s", "10",
                                "--window-s", "30", "--beam-size", "2", "--vad-threshold", "0.5", "--device", "cpu"])
    runs = evaluate.configurations(Settings(), args)
    options = [(kind, s.whisper.window_s, s.whisper.beam_size, s.whisper.vad_threshold, s.whisper.device)
               for s, kind in runs]
    assert options == [("default", 10, 2, 0.5, "cpu"), ("app", 10, 2, 0.5, "cpu"), ("app", 30, 2, 0.5, "cpu")]
    labels = [evaluate.Loaded(s, SimpleNamespace(compute_type="int8"), kind, 0.0).label for s, kind in runs]
    assert labels == ["default call: base (int8, beam 5, 30 s)", "base (int8, beam 2, VAD 0.5)",
                      "base (int8, beam 2, window s 30, VAD 0.5)"]


def test_offline_default_dataset_says_how_to_use_a_local_copy(tmp_path):
    result = run_evaluate("--limit", "1", "--output", str(tmp_path / "out"), HF_HUB_OFFLINE="1")
    assert result.returncode == 2
    assert "Could not fetch 'Bingsu/zeroth-korean'" in result.stderr
    assert "--dataset" in result.stderr and "metadata.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "nothing written when nothing was measured"


def test_wrong_flags_are_refused_before_any_work(tmp_path):
    result = run_evaluate("--limit", "0", "--dataset", str(tmp_path))
    assert result.returncode == 2 and "give a number of 1 or more" in result.stderr
    result = run_evaluate("--dataset", str(tmp_path / "missing"))
    assert result.returncode == 2 and "No folder" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.model
def test_unknown_model_fails_before_the_long_loop(espeak_set, tmp_path):
    result = run_evaluate("--dataset", str(espeak_set), "--model", "base", "--model", "no-such-model",
                          "--output", str(tmp_path / "out"), HF_HUB_OFFLINE="1")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Could not load Whisper model 'no-such-model'" in result.stderr
    assert "python -m voiceqna.convert" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
