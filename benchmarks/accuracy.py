"""The app's recognizer against faster-whisper's default call on every Korean set we can build: CER, CER with numbers read, WER, repetition, speed.

    python benchmarks/accuracy.py                                   # writes benchmarks/results/accuracy.json
    python benchmarks/accuracy.py --sets read,cut --out /tmp/a.json
    python benchmarks/accuracy.py --quick                           # 4 real clips, 4 cut pieces (~1 min); accuracy-quick.json
    python benchmarks/accuracy.py --candidates                      # also the decoders that lost (slower)
    python benchmarks/accuracy.py --device cuda --compute-type float16 --out gpu-accuracy.json
    python benchmarks/accuracy.py --gpu                             # the GPU check: CUDA float16, JSON to $OUT or /tmp

Sets: `read`, the 30 real recordings in ../shared/data/korean-read-speech; `silence`, `noise`,
`cut` and `espeak`, built from them into a temporary folder by `voiceqna.evaluation.perturb`
(deterministic; the audio never enters the project). Both recognizers use one loaded model.
Per clip the default call (`WhisperModel.transcribe(audio, language="ko")`) and the app's
recognizer run back to back, alternating which goes first, so a busy machine slows both alike;
compare the two columns of one run, not runs of different days. The speed-up is the ratio of
median latencies on the clips of 2–4 s (the length of a spoken question), per set and over all
sets. The JSON keeps every hypothesis, the header (commit, machine, load average, date) and,
with --candidates, the same figures for each decoder variant that was tried and not kept
(the committed accuracy.json also holds one the decoder no longer offers: no timestamps, no cut
of a repeated tail).

--gpu is the one GPU check (it was benchmarks/gpu_check.py): CUDA float16 on the sets that need
no espeak-ng (read, silence, noise, cut), the JSON to $OUT/gpu-accuracy.json (or the temporary
folder). Without a CUDA device it says so and exits with status 1. CTranslate2 4.8's wheels
load CUDA 12's cuBLAS (libcublas.so.12); where only another major version is installed (CUDA
13), it links libcublas.so.12 / libcublasLt.so.12 to it in a temporary folder and starts itself
again with that folder on LD_LIBRARY_PATH.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import glob
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path


import evaluate
from benchmarks import common
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import Settings
from voiceqna.evaluation import metrics, perturb
from voiceqna.evaluation.clips import READ_SPEECH
from voiceqna.evaluation.datasets import open_speech_set

logger = logging.getLogger("benchmark")

NAME = "accuracy"
QUICK_CLIPS = 4
SETS = ("read", "silence", "noise", "cut", "espeak")
SHORT_S = (2.0, 4.0)
CANDIDATES = {
    "timestamps, beam 2": dict(beam_size=2),
    "timestamps, beam 3": dict(beam_size=3),
}
"""Decoder variants measured beside the one the app keeps (see README "Measuring accuracy")."""


def clips_of(folder: Path) -> list[tuple]:
    return [(u, decode(u.audio)) for u in open_speech_set(str(folder))]


def compare(loaded: list[evaluate.Loaded], clips: list[tuple]) -> tuple[list[evaluate.RunResult], list[list[float]]]:
    """Every recognizer on every clip, back to back per clip, the order alternating; the runs
    and, per run, the process CPU seconds of each clip (one call at a time, so they are its own)."""
    results: list[list[evaluate.UtteranceResult]] = [[] for _ in loaded]
    cpu: list[list[float]] = [[] for _ in loaded]
    spent = [0.0] * len(loaded)
    for index, (utterance, samples) in enumerate(clips):
        order = list(range(len(loaded)))
        if index % 2:
            order.reverse()
        for i in order:
            started = time.process_time()
            transcript, seconds = evaluate._timed(loaded[i].recognizer.transcribe, samples)
            cpu[i].append(time.process_time() - started)
            spent[i] += seconds
            results[i].append(evaluate._score(utterance, transcript.text, samples.size / SAMPLE_RATE, seconds))
    runs = []
    for one, utterances, seconds in zip(loaded, results, spent):
        options = dataclasses.asdict(one.settings.whisper)
        options.update(recognizer=one.kind, device=one.recognizer.device, compute_type=one.recognizer.compute_type)
        runs.append(evaluate.RunResult(one.label, options, utterances, seconds, one.load_s, []))
    return runs, cpu


def is_short(utterance: dict) -> bool:
    return SHORT_S[0] <= utterance["duration_s"] <= SHORT_S[1]


def speed_up(pairs: list[tuple[dict, dict]]) -> dict:
    """Baseline against app on the same clips of 2–4 s: median latency ratio, and total wall
    and CPU time ratios."""
    pairs = [(b, a) for b, a in pairs if is_short(b)]
    if not pairs:
        return {"clips": 0}
    p50 = lambda values: metrics.percentiles(values)["p50"]  # noqa: E731
    wall_b, wall_a = [b["time_s"] for b, _ in pairs], [a["time_s"] for _, a in pairs]
    cpu_b, cpu_a = [b["cpu_s"] for b, _ in pairs], [a["cpu_s"] for _, a in pairs]
    return {"clips": len(pairs), "baseline_p50_s": p50(wall_b), "app_p50_s": p50(wall_a),
            "speed_up_p50": p50(wall_b) / p50(wall_a), "speed_up_total": sum(wall_b) / sum(wall_a),
            "speed_up_cpu": sum(cpu_b) / sum(cpu_a) if sum(cpu_a) else float("nan")}


def summary(run: evaluate.RunResult, cpu: list[float]) -> dict:
    out = run.summary()
    out["latin_hypotheses"] = sum(1 for u in run.utterances
                                  if _LATIN.search(u.hypothesis) and not _LATIN.search(u.reference))
    out["cpu_s"] = sum(cpu)
    out["utterances"] = [{"id": u.id, "reference": u.reference, "hypothesis": u.hypothesis, "repeated": u.repeated,
                          "duration_s": round(u.duration_s, 3), "time_s": round(u.time_s, 4), "cpu_s": round(c, 4)}
                         for u, c in zip(run.utterances, cpu)]
    return out


_LATIN = re.compile("[A-Za-z]")


def markdown(report: dict) -> str:
    lines = ["| set | clips | recognizer | CER | CER, numbers read | WER | repetition | RTF | p50 / p95 (s) |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, entry in report["sets"].items():
        for run in entry["runs"]:
            latency = run["latency_s"]
            lines.append(f"| {name} | {run['n']} | {run['label']} | {run['cer']:.3f} | {run['cer_numbers_read']:.3f} "
                         f"| {run['wer']:.3f} | {run['repetition_rate']:.3f} | {run['rtf']:.3f} "
                         f"| {latency['p50']:.2f} / {latency['p95']:.2f} |")
    lines += ["", "| clips of 2–4 s | clips | default p50 | app p50 | speed-up (p50, total wall, total CPU) |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for name, entry in [*report["sets"].items(), ("all sets", {"speed_up_2_4_s": report["speed_up_2_4_s"]})]:
        s = entry["speed_up_2_4_s"]
        if s["clips"]:
            lines.append(f"| {name} | {s['clips']} | {s['baseline_p50_s']:.2f} s | {s['app_p50_s']:.2f} s "
                         f"| ×{s['speed_up_p50']:.1f}, ×{s['speed_up_total']:.1f}, ×{s['speed_up_cpu']:.1f} |")
    if len(next(iter(report["sets"].values()))["runs"]) > 2:
        lines += ["", *trade_off(report)]
    return "\n".join(lines) + "\n"


def trade_off(report: dict) -> list[str]:
    """One row per recognizer over every set: its worst CER against the default call's, its
    repetitions, and its speed-up on the clips of 2–4 s (what accuracy costs what speed)."""
    sets = list(report["sets"].values())
    lines = ["| recognizer (all sets) | worst set: CER − default's | repeated utterances | speed-up on 2–4 s clips (p50, total CPU) |",
             "| --- | ---: | ---: | ---: |"]
    for index, label in enumerate(run["label"] for run in sets[0]["runs"]):
        if index == 0:
            continue
        worst = max((entry["runs"][index]["cer"] - entry["runs"][0]["cer"], name)
                    for name, entry in report["sets"].items())
        repeated = sum(entry["runs"][index]["repetitions"] for entry in sets)
        utterances = sum(entry["runs"][index]["n"] for entry in sets)
        s = speed_up([pair for entry in sets for pair in zip(entry["runs"][0]["utterances"], entry["runs"][index]["utterances"])])
        lines.append(f"| {label} | {100 * worst[0]:+.1f} points ({worst[1]}) | {repeated} of {utterances} "
                     f"| ×{s['speed_up_p50']:.1f}, ×{s['speed_up_cpu']:.1f} |")
    return lines


def with_candidates(app: evaluate.Loaded) -> list[evaluate.Loaded]:
    """The app's recognizer with each decoder variant of CANDIDATES (one shared model)."""
    from voiceqna.engines.asr_whisper import WhisperRecognizer
    from voiceqna.engines.asr_whisper_window import WindowDecoder

    out = []
    for name, options in CANDIDATES.items():
        whisper = app.settings.whisper
        window_s, beam_size = options.get("window_s", whisper.window_s), options.get("beam_size", whisper.beam_size)
        recognizer = WhisperRecognizer(whisper, app.settings.models_dir)
        recognizer.window = WindowDecoder(recognizer.model, window_s, beam_size)
        out.append(Candidate(app.settings, recognizer, "candidate", 0.0, name))
    return out


@dataclasses.dataclass(frozen=True)
class Candidate(evaluate.Loaded):
    name: str = ""

    @property
    def label(self) -> str:
        return f"candidate: {self.name}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "4 clips of the read and cut sets (for the tests)", NAME)
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from {', '.join(SETS)}")
    parser.add_argument("--device", help="cpu or cuda (default: WHISPER_DEVICE)")
    parser.add_argument("--compute-type", help="CTranslate2 compute type (default: WHISPER_COMPUTE_TYPE)")
    parser.add_argument("--candidates", action="store_true", help="also measure the decoder variants not kept")
    parser.add_argument("--gpu", action="store_true",
                        help=f"the GPU check: CUDA float16, sets {GPU_SETS} unless --sets, JSON to $OUT or /tmp")
    args = parser.parse_args(argv)
    if args.quick:
        args.sets = "read,cut"
    if args.gpu:
        args.device, args.compute_type = args.device or "cuda", args.compute_type or "float16"
        args.sets = args.sets if "--sets" in (argv or []) else GPU_SETS
        args.out = args.out or Path(os.environ.get("OUT") or tempfile.gettempdir()) / "gpu-accuracy.json"
    unknown = [n for n in args.sets.split(",") if n and n not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}: choose from {', '.join(SETS)}")
    return args


GPU_SETS = "read,silence,noise,cut"
"""The sets of the GPU check: those that need no espeak-ng."""
CUBLAS_SEARCH = ("/usr/local/cuda*/lib64", "/usr/local/cuda*/targets/*/lib", "/usr/lib/x86_64-linux-gnu",
                 f"{sys.prefix}/lib/python3*/site-packages/nvidia/*/lib")


def need_gpu() -> None:
    """Exit with a message where there is no CUDA device; where CUDA 12's cuBLAS does not load
    but another version's does, start again with links to it."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        raise SystemExit("accuracy.py --gpu: no CUDA device found (CTranslate2 sees none): run it on a machine "
                         "with an NVIDIA GPU and its driver, or drop --gpu to measure on the CPU.")
    try:
        ctypes.CDLL("libcublas.so.12")
        return
    except OSError:
        pass
    if "VOICEQNA_CUBLAS_LINKED" in os.environ:
        return
    folder = tempfile.mkdtemp(prefix="cublas12-")
    for name in ("libcublas", "libcublasLt"):
        found = sorted(p for pattern in CUBLAS_SEARCH for p in glob.glob(f"{pattern}/{name}.so.*")
                       if Path(p).name.split(".so.")[1].split(".")[0].isdigit())
        if not found:
            return  # nothing to link: CTranslate2 will say what is missing
        os.symlink(found[-1], f"{folder}/{name}.so.12")
    env = dict(os.environ, VOICEQNA_CUBLAS_LINKED="1", LD_LIBRARY_PATH=f"{folder}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv: list[str] | None = None) -> int:
    args, head = common.start(NAME, parse_args, argv)
    if args.gpu:
        need_gpu()
    names = [n for n in args.sets.split(",") if n]

    base = Settings.from_env()
    whisper = dataclasses.replace(base.whisper, **{k: v for k, v in
                                                  (("device", args.device), ("compute_type", args.compute_type)) if v})
    settings = dataclasses.replace(base, whisper=whisper)
    loaded = [evaluate.load(settings, "default"), evaluate.load(settings, "app")]
    if args.candidates:
        loaded += with_candidates(loaded[1])
    report = {"recognizers": {one.label: one.recognizer.description for one in loaded}, "sets": {}}
    with tempfile.TemporaryDirectory(prefix="voiceqna-sets-") as folder:
        built = perturb.build(Path(folder), names=tuple(n for n in names if n != "read"))
        folders = {"read": READ_SPEECH, **built}
        for name in names:
            started = time.perf_counter()
            runs, cpu = compare(loaded, clips_of(folders[name])[:QUICK_CLIPS if args.quick else None])
            entries = [summary(r, c) for r, c in zip(runs, cpu)]
            for entry in entries[1:]:
                entry["speed_up_2_4_s"] = speed_up(list(zip(entries[0]["utterances"], entry["utterances"])))
            report["sets"][name] = {"runs": entries, "speed_up_2_4_s": entries[1]["speed_up_2_4_s"]}
            logger.info("%s: %d clips in %.0f s; CER default %.3f, app %.3f; repetition app %.3f", name, runs[0].n,
                        time.perf_counter() - started, runs[0].cer, runs[1].cer, runs[1].repetition_rate)
    report["speed_up_2_4_s"] = speed_up([pair for entry in report["sets"].values()
                                         for pair in zip(entry["runs"][0]["utterances"], entry["runs"][1]["utterances"])])
    report["markdown"] = common.header_line(head) + "\n\n" + markdown(report)
    common.finish(NAME, args, head, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
