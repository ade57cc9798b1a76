"""The VAD threshold: the app's 0.35 against faster-whisper's 0.5 on the real recordings.

    python benchmarks/vad.py              # 30 real clips, thresholds 0.35 and 0.5 (~1 min on 2 cores)
    python benchmarks/vad.py --quick      # 3 clips
    python benchmarks/vad.py --thresholds 0.2,0.35,0.5

For each threshold: the speech Silero VAD keeps (seconds, and where the first speech starts),
then the app's recognizer with that threshold and nothing else changed (CER, WER). Clips
where the thresholds keep speech differing by more than 0.3 s are listed. Every recording is
read speech from start to end, so speech dropped is speech lost.
"""

from __future__ import annotations

import argparse
from dataclasses import replace


from benchmarks import common
from voiceqna.audio import SAMPLE_RATE
from voiceqna.compose import build_recognizer
from voiceqna.config import Settings

NAME = "vad"
DIFFERENT_S = 0.3


def speech_kept(recognizer, samples) -> dict:
    """Seconds of speech the recognizer's VAD keeps, and where it starts and ends."""
    from faster_whisper.vad import get_speech_timestamps

    spans = get_speech_timestamps(samples, recognizer.vad, sampling_rate=SAMPLE_RATE)
    return {"speech_s": round(sum(s["end"] - s["start"] for s in spans) / SAMPLE_RATE, 3),
            "first_s": round(spans[0]["start"] / SAMPLE_RATE, 3) if spans else None,
            "last_s": round(spans[-1]["end"] / SAMPLE_RATE, 3) if spans else None}


def measure(clips: list[common.Clip], thresholds: list[float]) -> dict:
    settings = Settings()
    recognizers = {t: build_recognizer(replace(settings, whisper=replace(settings.whisper, vad_threshold=t)))
                   for t in thresholds}
    rows = []
    for clip in clips:
        row = {"clip": clip.name, "duration_s": round(clip.duration_s, 3), "reference": clip.text}
        for t, recognizer in recognizers.items():
            row[str(t)] = {**speech_kept(recognizer, clip.samples), "text": recognizer.transcribe(clip.samples).text}
        rows.append(row)
        common.logger.info("%-22s %s", clip.name, "  ".join(f"{t}: {row[str(t)]['speech_s']:.1f} s" for t in thresholds))
    summary = {}
    for t in thresholds:
        summary[str(t)] = {"speech_s": round(sum(r[str(t)]["speech_s"] for r in rows), 2),
                           "audio_s": round(sum(r["duration_s"] for r in rows), 2),
                           **common.error_rates([r["reference"] for r in rows], [r[str(t)]["text"] for r in rows])}
    low, high = str(min(thresholds)), str(max(thresholds))
    differing = [{"clip": r["clip"], "duration_s": r["duration_s"], low: r[low], high: r[high], "reference": r["reference"]}
                 for r in rows if abs(r[low]["speech_s"] - r[high]["speech_s"]) > DIFFERENT_S]
    return {"summary": summary, "differing_clips": differing, "clips": rows}


def markdown(head: dict, result: dict) -> str:
    summary = result["summary"]
    rows = [[t, f"{s['speech_s']:.1f} of {s['audio_s']:.1f} s", f"{s['cer']:.3f}", f"{s['wer']:.3f}"]
            for t, s in summary.items()]
    low, high = list(summary)[0], list(summary)[-1]
    lines = [f"VAD threshold, {len(result['clips'])} real clips. {common.header_line(head)}", "",
             common.table(["threshold", "speech kept", "CER", "WER"], rows), ""]
    if result["differing_clips"]:
        lines.append(f"Clips where {low} and {high} keep speech differing by more than {DIFFERENT_S} s:")
        for d in result["differing_clips"]:
            lines.append(f"- {d['clip']} ({d['duration_s']:.1f} s): {low} keeps {d[low]['speech_s']:.1f} s from "
                         f"{d[low]['first_s']} s, {high} keeps {d[high]['speech_s']:.1f} s from {d[high]['first_s']} s")
    else:
        lines.append(f"No clip where the thresholds keep speech differing by more than {DIFFERENT_S} s.")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "the first 3 real clips", NAME)
    parser.add_argument("--real-clips", type=int, help="the first N real recordings (default all; quick 3)")
    parser.add_argument("--thresholds", default="0.35,0.5", help="Silero speech probabilities to compare")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    clips = common.real_clips(args.real_clips or (3 if args.quick else None))
    if not clips:
        raise SystemExit("The VAD comparison needs the real recordings (../shared/data/korean-read-speech).")
    result = measure(clips, sorted(float(t) for t in args.thresholds.split(",")))
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
