"""Latency, accuracy, throughput and memory of a voice turn, with the model loaded once.

    python benchmarks/latency.py --json benchmarks/results/latency.json
    python benchmarks/latency.py --device cuda --compute-type float16 --json gpu.json

Sections (all figures go to the JSON; a summary table is printed as Markdown):
  recognition  faster-whisper's `transcribe(language="ko")` with its defaults (the baseline)
               against the recognizer as the app runs it, on the same clips, interleaved per
               clip in alternating order, repeated; latency p50/p95, real-time factor, CER
  turn         `ChatService.send_audio` with the offline engines: time to the answer text
               and to the answer audio, cold and warm speech cache
  concurrency  1, 4 and 8 clients, each with its own conversation, sending clips at once
  memory       peak resident memory, and the number of Whisper models in memory
  levers       window size x beam size, micro-batching, thread settings, warm-up, first-
               sentence speech (skipped with --quick)

Clips: the real Korean recordings in ../shared/data/korean-read-speech (skipped where absent)
and Korean questions spoken by espeak-ng (2-6 s). Other processes on the machine make
absolute timings noisy: compare ratios, and see `load_average` in the JSON.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import logging
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import jiwer
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voiceqna import audio  # noqa: E402
from voiceqna.engines import asr_whisper as asr  # noqa: E402
from voiceqna.compose import build_recognizer, build_service  # noqa: E402
from voiceqna.config import PROJECT_ROOT, Settings, WhisperOptions  # noqa: E402
from voiceqna.textnorm import compact  # noqa: E402

logger = logging.getLogger("benchmark")

READ_SPEECH = PROJECT_ROOT.parent / "shared" / "data" / "korean-read-speech"
ESPEAK_SENTENCES = (
    "안녕하세요, 오늘 날씨 어때요?",
    "한국에서 가장 높은 산은 어디예요?",
    "서울에서 부산까지 얼마나 걸려요?",
    "김치는 어떻게 만들어요?",
    "제주도에 가면 뭘 해야 해요?",
    "한글은 누가 만들었어요?",
    "스트레스 해소법 좀 알려 주세요.",
    "한국의 수도는 어디예요?",
    "잠이 안 와요. 어떻게 하면 좋을까요?",
    "인공지능이 뭐예요? 쉽게 설명해 주세요.",
    "서울에서 가 볼 만한 곳을 추천해 주세요.",
    "한국어를 잘하려면 어떻게 공부해야 해요?",
)
SHORT_CLIP_S = (2.0, 4.0)
"""Clips of about 3 s: the targets are stated for them."""


@dataclass(frozen=True)
class Clip:
    name: str
    source: str  # "real" or "espeak"
    text: str
    wav: bytes
    samples: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.samples.size / audio.SAMPLE_RATE


# ---------------------------------------------------------------- helpers


def pct(values, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def cer(reference: str, hypothesis: str) -> float:
    return float(jiwer.cer(compact(reference), compact(hypothesis)))


def corpus_cer(references: list[str], hypotheses: list[str]) -> float | None:
    """Character errors over all clips / reference characters (spaces and punctuation ignored)."""
    if not references:
        return None
    return float(jiwer.process_characters([compact(r) for r in references], [compact(h) for h in hypotheses]).cer)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def gpu_memory_mb() -> float | None:
    """Memory in use on the first GPU (nvidia-smi), None without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def load_clips(limit_real: int | None, espeak_count: int, workdir: Path) -> list[Clip]:
    clips: list[Clip] = []
    metadata = READ_SPEECH / "metadata.csv"
    if metadata.is_file():
        with open(metadata, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))[:limit_real]
        for row in rows:
            wav = (READ_SPEECH / row["file_name"]).read_bytes()
            clips.append(Clip(row["file_name"], "real", row["text"], wav, audio.decode(wav)))
    else:
        logger.warning("No real recordings at %s: espeak-ng clips only", READ_SPEECH)
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        logger.warning("espeak-ng is missing: no synthetic clips")
        return clips
    for i, sentence in enumerate(ESPEAK_SENTENCES[:espeak_count]):
        path = workdir / f"espeak-{i}.wav"
        subprocess.run([espeak, "-v", "ko", "-s", "130", "-w", str(path), "--stdin"],
                       input=sentence.encode(), check=True, capture_output=True)
        wav = path.read_bytes()
        clip = Clip(path.name, "espeak", sentence, wav, audio.decode(wav))
        if 2.0 <= clip.duration_s <= 6.0:
            clips.append(clip)
    return clips


def machine(recognizer) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import ctranslate2
    import faster_whisper

    gpu = None
    if recognizer.device == "cuda":
        try:
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            gpu = "unknown"
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores_available": len(os.sched_getaffinity(0)),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu,
        "python": platform.python_version(),
        "ctranslate2": ctranslate2.__version__,
        "faster_whisper": faster_whisper.__version__,
        "recognizer": recognizer.description,
        "device": recognizer.device,
        "compute_type": recognizer.compute_type,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(recognizer.options).items()},
        "load_average_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- recognition


def baseline_transcribe(model, samples: np.ndarray) -> str:
    """What a typical app does: the defaults (beam 5, temperature fallback, 30 s window), Korean."""
    segments, _ = model.transcribe(samples, language="ko")
    return "".join(s.text for s in segments).strip()


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def timed_cpu(fn, *args):
    """Wall seconds and this process's CPU seconds (all threads): the latter barely depends on
    what else the machine runs, so it backs the wall-clock ratio on a loaded machine."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - start, time.process_time() - cpu


def bench_recognition(recognizer, clips: list[Clip], repeats: int) -> dict:
    systems = {
        "baseline": lambda s: baseline_transcribe(recognizer.model, s),
        "ours": lambda s: recognizer.transcribe(s).text,
    }
    per_clip = []
    for index, clip in enumerate(clips):
        times = {name: [] for name in systems}
        cpu = {name: [] for name in systems}
        texts = {}
        for rep in range(repeats):
            order = list(systems) if (index + rep) % 2 == 0 else list(reversed(systems))
            for name in order:
                text, seconds, cpu_s = timed_cpu(systems[name], clip.samples)
                times[name].append(seconds)
                cpu[name].append(cpu_s)
                texts[name] = text
        row = {"clip": clip.name, "source": clip.source, "duration_s": round(clip.duration_s, 3),
               "reference": clip.text, "load_average": os.getloadavg()[0]}
        for name in systems:
            median = float(np.median(times[name]))
            row[name] = {"text": texts[name], "seconds": times[name], "median_s": median,
                         "cpu_seconds": cpu[name], "median_cpu_s": float(np.median(cpu[name])),
                         "rtf": median / clip.duration_s, "cer": cer(clip.text, texts[name])}
        row["speedup"] = row["baseline"]["median_s"] / row["ours"]["median_s"]
        row["speedup_cpu"] = row["baseline"]["median_cpu_s"] / row["ours"]["median_cpu_s"]
        per_clip.append(row)
        logger.info("%-22s %5.1f s  baseline %.3f s  ours %.3f s  x%.1f  CER %.2f / %.2f", clip.name,
                    clip.duration_s, row["baseline"]["median_s"], row["ours"]["median_s"], row["speedup"],
                    row["baseline"]["cer"], row["ours"]["cer"])
    groups = {
        "all": per_clip,
        "real": [r for r in per_clip if r["source"] == "real"],
        "espeak": [r for r in per_clip if r["source"] == "espeak"],
        "about_3s": [r for r in per_clip if SHORT_CLIP_S[0] <= r["duration_s"] <= SHORT_CLIP_S[1]],
        "real_about_3s": [r for r in per_clip
                          if r["source"] == "real" and SHORT_CLIP_S[0] <= r["duration_s"] <= SHORT_CLIP_S[1]],
    }
    return {"repeats": repeats, "clips": per_clip,
            "summary": {group: summarise_recognition(rows, list(systems)) for group, rows in groups.items() if rows}}


def summarise_recognition(rows: list[dict], systems: list[str]) -> dict:
    out = {"clips": len(rows), "audio_s": sum(r["duration_s"] for r in rows),
           "speedup_median": float(np.median([r["speedup"] for r in rows])),
           "speedup_cpu_median": float(np.median([r["speedup_cpu"] for r in rows]))}
    for name in systems:
        latencies = [r[name]["median_s"] for r in rows]
        out[name] = {
            "p50_s": pct(latencies, 50),
            "p95_s": pct(latencies, 95),
            "cpu_p50_s": pct([r[name]["median_cpu_s"] for r in rows], 50),
            "rtf": sum(latencies) / out["audio_s"],
            "cer": corpus_cer([r["reference"] for r in rows], [r[name]["text"] for r in rows]),
        }
    out["cer_difference"] = out["ours"]["cer"] - out["baseline"]["cer"]
    return out


# ---------------------------------------------------------------- turns


def one_turn(service, conversation_id: str, clip: Clip) -> dict:
    started = time.perf_counter()
    turn = service.send_audio(conversation_id, clip.wav)
    wall = time.perf_counter() - started
    t = turn.timings
    text_s = (t.decode_ms + t.asr_ms + t.chat_ms) / 1000
    return {"clip": clip.name, "duration_s": clip.duration_s, "transcript": turn.transcript, "answer": turn.text,
            "answer_text_s": text_s, "answer_audio_s": text_s + t.tts_ms / 1000, "returned_s": wall,
            "has_audio": bool(turn.audio), "stages_ms": vars(t).copy()}


def summarise_turns(rows: list[dict]) -> dict:
    out = {"turns": len(rows)}
    for key in ("answer_text_s", "answer_audio_s", "returned_s"):
        values = [r[key] for r in rows]
        out[key] = {"p50": pct(values, 50), "p95": pct(values, 95)}
    return out


def bench_turns(service, clips: list[Clip], repeats: int) -> dict:
    service.synthesizer.synthesize.cache_clear()
    conversation = service.create()
    cold = [one_turn(service, conversation, clip) for clip in clips]
    warm = [one_turn(service, conversation, clip) for _ in range(repeats - 1) for clip in clips] if repeats > 1 else []
    short = lambda rows: [r for r in rows if SHORT_CLIP_S[0] <= r["duration_s"] <= SHORT_CLIP_S[1]]  # noqa: E731
    return {
        "cold_speech_cache": {"all": summarise_turns(cold), "about_3s": summarise_turns(short(cold)), "turns": cold},
        "warm_speech_cache": {"all": summarise_turns(warm), "about_3s": summarise_turns(short(warm)), "turns": warm},
    }


def bench_concurrency(service, clips: list[Clip], levels: list[int], turns: int, rounds: int) -> dict:
    """`turns` turns per level, shared by the clients; levels interleaved over `rounds` rounds."""
    runs: dict[int, list[dict]] = {clients: [] for clients in levels}
    for _ in range(rounds):
        for clients in levels:
            runs[clients].append(_concurrent_run(service, clips, clients, max(1, turns // clients)))
    out = {}
    for clients, results in runs.items():
        latencies = [x for r in results for x in r["latencies"]]
        out[str(clients)] = {
            "clients": clients, "rounds": len(results), "turns": len(latencies),
            "errors": [e for r in results for e in r["errors"]],
            "turns_per_s": float(np.median([r["turns_per_s"] for r in results])),
            "turns_per_s_each_round": [r["turns_per_s"] for r in results],
            "p50_s": pct(latencies, 50), "p95_s": pct(latencies, 95),
            "load_average": [r["load_average"] for r in results], "rss_mb": rss_mb(),
        }
        logger.info("%d clients: %.2f turns/s, p95 %.2f s, %d errors", clients, out[str(clients)]["turns_per_s"],
                    out[str(clients)]["p95_s"] or 0, len(out[str(clients)]["errors"]))
    base = out[str(levels[0])]["turns_per_s"]
    for row in out.values():
        row["throughput_vs_first"] = row["turns_per_s"] / base
    return out


def _concurrent_run(service, clips: list[Clip], clients: int, turns_per_client: int) -> dict:
    conversations = [service.create() for _ in range(clients)]
    errors: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def client(k: int) -> None:
        barrier.wait()
        for j in range(turns_per_client):
            clip = clips[(k * turns_per_client + j) % len(clips)]
            try:
                started = time.perf_counter()
                service.send_audio(conversations[k], clip.wav)
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as exc:  # counted and reported, never hidden
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "turns_per_s": len(latencies) / wall,
            "load_average": os.getloadavg()[0]}


# ---------------------------------------------------------------- levers


def bench_windows(recognizer, clips: list[Clip], windows: list[int], beams: list[int], models_dir: Path) -> list[dict]:
    """CER and latency of the short-window path for each window x beam (30 = the standard path)."""
    rows = []
    for beam in beams:
        for window in windows:
            options = replace(recognizer.options, window_s=window, beam_size=beam)
            variant = asr.WhisperRecognizer(options, models_dir)  # the same cached model
            assert variant.model is recognizer.model
            texts, seconds = [], []
            for clip in clips:
                text, s = timed(lambda c: variant.transcribe(c).text, clip.samples)
                texts.append(text)
                seconds.append(s)
            row = {"window_s": window, "beam_size": beam, "clips": len(clips),
                   "cer": corpus_cer([c.text for c in clips], texts),
                   "p50_s": pct(seconds, 50), "p95_s": pct(seconds, 95), "load_average": os.getloadavg()[0]}
            rows.append(row)
            logger.info("window %2d beam %d: CER %.3f p50 %.3f s", window, beam, row["cer"], row["p50_s"])
    return rows


def bench_batching(recognizer, clips: list[Clip], rounds: int = 8) -> dict:
    """Micro-batching: encoder and decoder on len(clips) clips in one call vs one call each.

    Same precomputed features both ways; interleaved rounds; min and median of wall seconds."""
    import ctranslate2

    decoder = recognizer.window
    if decoder is None:
        return {"skipped": "the short window is off"}
    window = decoder.min_window_s
    features = [decoder.log_mel(recognizer.speech_pieces(c.samples)[0], window) for c in clips]
    singles = [ctranslate2.StorageView.from_array(f) for f in features]
    stacked = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(features)))
    encoded = [decoder.model.encode(f, to_cpu=decoder.to_cpu) for f in singles]
    encoded_batch = decoder.model.encode(stacked, to_cpu=decoder.to_cpu)
    kwargs = dict(max_length=len(decoder.prompt) + 64, suppress_tokens=decoder.suppress, return_scores=True,
                  return_no_speech_prob=True, beam_size=decoder.beam_size)
    measures = {
        "encode_one_by_one": lambda: [decoder.model.encode(f, to_cpu=decoder.to_cpu) for f in singles],
        "encode_batched": lambda: decoder.model.encode(stacked, to_cpu=decoder.to_cpu),
        "decode_one_by_one": lambda: [decoder.model.generate(e, [decoder.prompt], **kwargs) for e in encoded],
        "decode_batched": lambda: decoder.model.generate(encoded_batch, [decoder.prompt] * len(clips), **kwargs),
    }
    seconds: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, fn in measures.items():
            seconds[name].append(timed(fn)[1])
    out = {"batch": len(clips), "clips": [c.name for c in clips], "window_s": window, "rounds": rounds}
    for name, values in seconds.items():
        out[name] = {"min_s": min(values), "median_s": float(np.median(values))}
    out["encode_gain_min"] = out["encode_one_by_one"]["min_s"] / out["encode_batched"]["min_s"]
    out["decode_gain_min"] = out["decode_one_by_one"]["min_s"] / out["decode_batched"]["min_s"]
    return out


def bench_threads(settings: Settings, clips: list[Clip], configs: list[tuple[int, int]], clients: int,
                  rounds: int = 2) -> list[dict]:
    """Single-request latency and `clients`-way throughput of the recognizer per (threads, workers).

    Every configuration is loaded at once and measured in interleaved rounds (medians)."""
    recognizers = {}
    for threads, workers in configs:
        recognizers[(threads, workers)] = build_recognizer(
            replace(settings, whisper=replace(settings.whisper, cpu_threads=threads, workers=workers)))
        recognizers[(threads, workers)].warm_up()
    single: dict[tuple, list[float]] = {key: [] for key in recognizers}
    throughput: dict[tuple, list[float]] = {key: [] for key in recognizers}
    for _ in range(rounds):
        for key, recognizer in recognizers.items():
            single[key] += [timed(recognizer.transcribe, c.samples)[1] for c in clips[:clients]]
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda c: recognizer.transcribe(c.samples), clips))
            throughput[key].append(len(clips) / (time.perf_counter() - started))
    rows = []
    for (threads, workers), recognizer in recognizers.items():
        rows.append({"cpu_threads": threads, "workers": workers, "single_p50_s": pct(single[(threads, workers)], 50),
                     "concurrent_clients": clients,
                     "concurrent_per_s": float(np.median(throughput[(threads, workers)])),
                     "concurrent_per_s_each_round": throughput[(threads, workers)]})
        logger.info("threads %d workers %d: single p50 %.3f s, %d clients %.2f/s", threads, workers,
                    rows[-1]["single_p50_s"], clients, rows[-1]["concurrent_per_s"])
    recognizers.clear()
    asr._MODEL_CACHE.clear()
    gc.collect()
    return rows


def bench_first_sentence(service, answers: list[str]) -> dict:
    """Speech for the whole answer vs for its first sentence only (the streaming lever), cold cache."""
    synth = service.synthesizer
    whole, first = [], []
    for answer in answers:
        synth.synthesize.cache_clear()
        whole.append(timed(synth.synthesize, answer)[1])
        head = re.split(r"(?<=[.!?])\s+", answer, maxsplit=1)[0]
        synth.synthesize.cache_clear()
        first.append(timed(synth.synthesize, head)[1])
    return {"answers": len(answers), "whole_p50_s": pct(whole, 50), "first_sentence_p50_s": pct(first, 50)}


# ---------------------------------------------------------------- report


def markdown(result: dict) -> str:
    m = result["machine"]
    rec = result["recognition"]["summary"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores_available']} cores, {m['memory_gb']} GB"
        + (f", GPU {m['gpu']}" if m["gpu"] else "")
        + f"; {m['recognizer']}; load average at start {m['load_average_start'][0]:.1f}.",
        "",
        "| recognition: p50 / p95 s, RTF, CER | baseline `transcribe()` | ours | speed-up (wall, CPU) |",
        "| --- | --- | --- | --- |",
    ]
    for group in ("about_3s", "real", "espeak", "all"):
        if group in rec:
            g = rec[group]
            cell = lambda s: f"{s['p50_s']:.2f} / {s['p95_s']:.2f}, {s['rtf']:.2f}, {s['cer']:.3f}"  # noqa: E731
            lines.append(f"| {group} ({g['clips']} clips) | {cell(g['baseline'])} | {cell(g['ours'])} "
                         f"| x{g['speedup_median']:.1f}, x{g['speedup_cpu_median']:.1f} |")
    turns = result["turns"]
    lines += ["", "| offline turn, p50 / p95 s | answer text | answer audio |", "| --- | --- | --- |"]
    for cache in ("cold_speech_cache", "warm_speech_cache"):
        for group in ("about_3s", "all"):
            t = turns[cache][group]
            if t["turns"]:
                lines.append(f"| {group}, {cache.replace('_', ' ')} ({t['turns']}) "
                             f"| {t['answer_text_s']['p50']:.2f} / {t['answer_text_s']['p95']:.2f} "
                             f"| {t['answer_audio_s']['p50']:.2f} / {t['answer_audio_s']['p95']:.2f} |")
    lines += ["", "| clients | turns/s | x vs 1 | p95 s | errors |", "| --- | --- | --- | --- | --- |"]
    for row in result["concurrency"].values():
        lines.append(f"| {row['clients']} | {row['turns_per_s']:.2f} | {row['throughput_vs_first']:.2f} "
                     f"| {row['p95_s']:.2f} | {len(row['errors'])} |")
    mem = result["memory"]
    gpu = f"; GPU memory in use {mem['gpu_memory_used_mb']:.0f} MB" if mem["gpu_memory_used_mb"] is not None else ""
    lines += ["", f"Peak memory {mem['peak_rss_mb']:.0f} MB{gpu}; Whisper models in memory: {mem['whisper_models']}."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--compute-type", default="auto", help="auto: int8 on CPU, float16 on CUDA")
    parser.add_argument("--model", default="base")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each clip per system (medians reported)")
    parser.add_argument("--real-clips", type=int, default=None, help="use only the first N real recordings")
    parser.add_argument("--espeak-clips", type=int, default=8)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--turns", type=int, default=24, help="turns per concurrency level, shared by its clients")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the concurrency levels (median)")
    parser.add_argument("--quick", action="store_true", help="skip the lever measurements")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="voiceqna-bench-"))
    whisper = replace(WhisperOptions(), model=args.model, device=args.device, compute_type=args.compute_type)
    settings = replace(Settings(), whisper=whisper, chat_engine="offline", tts_engine="espeak",
                       store="sqlite", data_dir=workdir / "data")
    settings.validate()
    settings.data_dir.mkdir(parents=True)
    clips = load_clips(args.real_clips, args.espeak_clips, workdir)
    logger.info("%d clips (%d real, %d espeak-ng)", len(clips), sum(c.source == "real" for c in clips),
                sum(c.source == "espeak" for c in clips))

    rss_before = rss_mb()
    recognizer, load_s = timed(build_recognizer, settings)
    result: dict = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
                    "machine": machine(recognizer), "model_load_s": load_s}
    # Warm-up lever: the first request on a fresh model against the same request warm.
    probe = min(clips, key=lambda c: abs(c.duration_s - 3.0))
    first = timed(recognizer.transcribe, probe.samples)[1]
    second = timed(recognizer.transcribe, probe.samples)[1]
    result["warm_up"] = {"clip": probe.name, "first_request_s": first, "warm_request_s": second}
    baseline_transcribe(recognizer.model, probe.samples)  # the baseline's first call is not timed either

    result["recognition"] = bench_recognition(recognizer, clips, args.repeats)
    service = build_service(settings, recognizer=recognizer)
    result["turns"] = bench_turns(service, clips, args.repeats)
    rss_one_conversation = rss_mb()
    short = [c for c in clips if c.duration_s <= 6.0]
    result["concurrency"] = bench_concurrency(service, short, [int(x) for x in args.clients.split(",")],
                                              args.turns, args.rounds)
    result["memory"] = {"rss_before_model_mb": rss_before, "rss_after_one_conversation_mb": rss_one_conversation,
                        "rss_after_concurrency_mb": rss_mb(), "peak_rss_mb": peak_rss_mb(),
                        "whisper_models": len(asr._MODEL_CACHE), "gpu_memory_used_mb": gpu_memory_mb(),
                        "conversations": 1 + args.rounds * sum(int(x) for x in args.clients.split(","))}
    if not args.quick:
        real = [c for c in clips if c.source == "real"] or clips
        result["levers"] = {
            "windows": bench_windows(recognizer, real, [8, 10, 12, 15, 30], [1, 2], settings.models_dir),
            "batching": bench_batching(recognizer, sorted(short, key=lambda c: abs(c.duration_s - 3.0))[:4]),
            "first_sentence_speech": bench_first_sentence(service, sorted({t["answer"] for t in
                                                                          result["turns"]["cold_speech_cache"]["turns"]})),
        }
        service.store.close()
        del service, recognizer
        asr._MODEL_CACHE.clear()
        gc.collect()
        result["levers"]["threads"] = bench_threads(settings, short, [(4, 1), (2, 1), (1, 2), (2, 2)], 8)
    result["machine"]["load_average_end"] = os.getloadavg()
    result["markdown"] = markdown(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1))
        logger.info("Wrote %s", args.json)
    print(result["markdown"])
    shutil.rmtree(workdir, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
