"""Recognition: faster-whisper's default call against the app's recognizer, same model, same clips.

    python benchmarks/recognition.py                 # 30 real clips + 8 espeak-ng, 3 runs each (~5 min on 2 cores)
    python benchmarks/recognition.py --quick         # 2 real clips, 1 run (about 30 s)
    python benchmarks/recognition.py --device cuda --compute-type float16

The baseline is what a typical app calls (`voiceqna.evaluation.baseline.DefaultCall`):
`WhisperModel.transcribe(audio, language="ko")` with faster-whisper's defaults (30 s window, beam 5, temperature fallback up to 5 retries). Ours is
the recognizer the app builds from its default settings (`voiceqna.compose.build_recognizer`).
Both use the one loaded model. Per clip the two run back to back, in alternating order,
`--repeats` times (medians), so a load change on the machine hits both alike. Reported per
group of clips: latency p50/p95, real-time factor, CPU seconds, corpus CER and WER, and the
speed-up (median of per-clip ratios, wall and CPU). Also the first request on the fresh
model against the same request warm (why `app.py` warms up).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np


from benchmarks import common
from voiceqna.compose import build_recognizer
from voiceqna.config import Settings
from voiceqna.evaluation.baseline import DefaultCall

NAME = "recognition"
SYSTEMS = ("baseline", "ours")


def measure(recognizer, baseline: DefaultCall, clips: list[common.Clip], repeats: int) -> list[dict]:
    run = {"baseline": lambda s: baseline.transcribe(s).text,
           "ours": lambda s: recognizer.transcribe(s).text}
    rows = []
    for index, clip in enumerate(clips):
        wall = {name: [] for name in SYSTEMS}
        cpu = {name: [] for name in SYSTEMS}
        texts = {}
        for rep in range(repeats):
            for name in SYSTEMS if (index + rep) % 2 == 0 else reversed(SYSTEMS):
                texts[name], seconds, cpu_s = common.timed_cpu(run[name], clip.samples)
                wall[name].append(seconds)
                cpu[name].append(cpu_s)
        row = {"clip": clip.name, "source": clip.source, "duration_s": round(clip.duration_s, 3),
               "reference": clip.text}
        for name in SYSTEMS:
            row[name] = {"text": texts[name], "seconds": wall[name], "median_s": float(np.median(wall[name])),
                         "median_cpu_s": float(np.median(cpu[name]))}
        rows.append(row)
        common.logger.info("%-22s %5.1f s  baseline %.2f s  ours %.2f s", clip.name, clip.duration_s,
                           row["baseline"]["median_s"], row["ours"]["median_s"])
    return rows


def summarise(rows: list[dict]) -> dict:
    audio_s = sum(r["duration_s"] for r in rows)
    out: dict = {"clips": len(rows), "audio_s": round(audio_s, 2)}
    for name in SYSTEMS:
        latencies = [r[name]["median_s"] for r in rows]
        out[name] = {**common.p50_p95(latencies), "rtf": sum(latencies) / audio_s,
                     "cpu_p50_s": common.p50_p95([r[name]["median_cpu_s"] for r in rows])["p50"],
                     **common.error_rates([r["reference"] for r in rows], [r[name]["text"] for r in rows])}
    out["speedup_wall"] = float(np.median([r["baseline"]["median_s"] / r["ours"]["median_s"] for r in rows]))
    out["speedup_cpu"] = float(np.median([r["baseline"]["median_cpu_s"] / r["ours"]["median_cpu_s"] for r in rows]))
    return out


GROUPS = {
    "real, 2-4 s": lambda r: r["source"] == "real" and common.SHORT_S[0] <= r["duration_s"] <= common.SHORT_S[1],
    "real, all": lambda r: r["source"] == "real",
    "espeak-ng questions": lambda r: r["source"] == "espeak",
    "all clips": lambda r: True,
}


def markdown(head: dict, recognizer: str, summary: dict, warm_up: dict) -> str:
    rows = []
    for group, s in summary.items():
        b, o = s["baseline"], s["ours"]
        rows.append([f"{group} ({s['clips']})",
                     f"{b['p50']:.2f} / {b['p95']:.2f} s, RTF {b['rtf']:.2f}",
                     f"{o['p50']:.2f} / {o['p95']:.2f} s, RTF {o['rtf']:.2f}",
                     f"×{s['speedup_wall']:.1f}, ×{s['speedup_cpu']:.1f}",
                     f"{b['cer']:.3f} → {o['cer']:.3f}", f"{b['wer']:.3f} → {o['wer']:.3f}"])
    return "\n".join([
        f"Recognition, {recognizer}. {common.header_line(head)}", "",
        common.table(["clips", "baseline p50 / p95", "ours p50 / p95", "speed-up (wall, CPU)", "CER baseline → ours",
                      "WER baseline → ours"], rows), "",
        f"First request on the fresh model {warm_up['first_s']:.2f} s, the same request warm {warm_up['warm_s']:.2f} s.",
    ])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "2 real clips (no espeak-ng), 1 run each", NAME)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--compute-type", default="auto", help="auto: int8 on CPU, float16 on CUDA")
    parser.add_argument("--model", default="base")
    parser.add_argument("--repeats", type=int, help="runs of each clip per system, medians (default 3; quick 1)")
    parser.add_argument("--real-clips", type=int, help="the first N real recordings (default all; quick 2)")
    parser.add_argument("--espeak-clips", type=int, help="espeak-ng questions (default 8; quick 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    repeats = args.repeats or (1 if args.quick else 3)
    clips = common.load_clips(args.real_clips or (2 if args.quick else None),
                              args.espeak_clips if args.espeak_clips is not None else (0 if args.quick else 8))
    settings = Settings()
    settings = replace(settings, whisper=replace(settings.whisper, model=args.model, device=args.device,
                                                 compute_type=args.compute_type))
    recognizer, load_s = common.timed(build_recognizer, settings)
    probe = min(clips, key=lambda c: abs(c.duration_s - 3.0))
    warm_up = {"clip": probe.name, "first_s": common.timed(recognizer.transcribe, probe.samples)[1],
               "warm_s": common.timed(recognizer.transcribe, probe.samples)[1]}
    baseline = DefaultCall(settings.whisper, settings.models_dir)  # the same loaded model
    baseline.transcribe(probe.samples)  # the baseline's first call is not timed either

    rows = measure(recognizer, baseline, clips, repeats)
    summary = {group: summarise(chosen) for group, keep in GROUPS.items() if (chosen := [r for r in rows if keep(r)])}
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(recognizer.options).items()}
    text = markdown(head, recognizer.description, summary, warm_up)
    common.finish(NAME, args, head, {
        "recognizer": {"description": recognizer.description, "device": recognizer.device,
                       "compute_type": recognizer.compute_type, "options": options, "load_s": load_s},
        "baseline": "WhisperModel.transcribe(samples, language='ko'), faster-whisper's defaults",
        "repeats": repeats, "warm_up": warm_up, "summary": summary, "clips": rows, "markdown": text})
    return summary


if __name__ == "__main__":
    main()
