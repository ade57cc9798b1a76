"""The recognizer's levers: window size × beam size (accuracy and latency), and threads × workers
(one request's latency and the throughput of 8 at once).

    python benchmarks/levers.py            # 30 real clips × 10 settings, then 4 thread settings (~6 min on 2 cores)
    python benchmarks/levers.py --quick    # 2 clips × windows 10, 30 at beam 2; 2 thread settings

Every setting is the app's recognizer (`voiceqna.compose.build_recognizer`) with one or two
options changed. Window × beam: recognizers differing only in decoding share one loaded
model; per clip every setting runs once, in an order that rotates from clip to clip, so a load
change on the machine hits them all alike. 30 is faster-whisper's own 30 s path. Threads ×
workers: one model per setting, all loaded at once and measured in interleaved rounds (medians).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np


from benchmarks import common
from voiceqna.compose import build_recognizer
from voiceqna.config import Settings

NAME = "levers"


def with_whisper(settings: Settings, **changes) -> Settings:
    return replace(settings, whisper=replace(settings.whisper, **changes))


def windows_by_beams(settings: Settings, clips: list[common.Clip], windows: list[int], beams: list[int]) -> list[dict]:
    keys = [(w, b) for b in beams for w in windows]
    recognizers = {(w, b): build_recognizer(with_whisper(settings, window_s=w, beam_size=b)) for w, b in keys}
    texts = {key: [] for key in keys}
    seconds = {key: [] for key in keys}
    for index, clip in enumerate(clips):
        for key in keys[index % len(keys):] + keys[:index % len(keys)]:
            text, s = common.timed(lambda c: recognizers[key].transcribe(c).text, clip.samples)
            texts[key].append(text)
            seconds[key].append(s)
    rows = []
    for window, beam in keys:
        latency = common.p50_p95(seconds[(window, beam)])
        rows.append({"window_s": window, "beam_size": beam, "clips": len(clips), "p50_s": latency["p50"],
                     "p95_s": latency["p95"], "rtf": sum(seconds[(window, beam)]) / sum(c.duration_s for c in clips),
                     **common.error_rates([c.text for c in clips], texts[(window, beam)]),
                     "texts": texts[(window, beam)]})
        common.logger.info("window %2d beam %d: CER %.3f, p50 %.2f s", window, beam, rows[-1]["cer"], rows[-1]["p50_s"])
    return rows


def threads_by_workers(settings: Settings, clips: list[common.Clip], configs: list[tuple[int, int]], clients: int,
                       rounds: int) -> list[dict]:
    recognizers = {}
    for threads, workers in configs:
        recognizers[(threads, workers)] = build_recognizer(with_whisper(settings, cpu_threads=threads, workers=workers))
        recognizers[(threads, workers)].warm_up()
    single = {key: [] for key in configs}
    throughput = {key: [] for key in configs}
    batch = (clips * (2 * clients // len(clips) + 1))[:2 * clients]  # two turns per client
    for _ in range(rounds):
        for key, recognizer in recognizers.items():
            single[key] += [common.timed(recognizer.transcribe, c.samples)[1] for c in clips[:clients]]
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(lambda c: recognizer.transcribe(c.samples), batch))
            throughput[key].append(len(batch) / (time.perf_counter() - started))
    rows = []
    for threads, workers in configs:
        rows.append({"cpu_threads": threads, "workers": workers, "single_p50_s": common.p50_p95(single[(threads, workers)])["p50"],
                     "clients": clients, "at_once_per_s": float(np.median(throughput[(threads, workers)])),
                     "at_once_per_s_each_round": throughput[(threads, workers)]})
        common.logger.info("threads %d workers %d: one %.2f s, %d at once %.2f/s", threads, workers,
                           rows[-1]["single_p50_s"], clients, rows[-1]["at_once_per_s"])
    return rows


def markdown(head: dict, windows: list[dict], threads: list[dict]) -> str:
    return "\n".join([
        f"Recognizer levers. {common.header_line(head)}", "",
        common.table(["window", "beam", "CER", "WER", "p50 / p95"],
                     [[f"{r['window_s']} s", r["beam_size"], f"{r['cer']:.3f}", f"{r['wer']:.3f}",
                       f"{r['p50_s']:.2f} / {r['p95_s']:.2f} s"] for r in windows]), "",
        common.table(["threads", "workers", "one request p50", f"{threads[0]['clients'] if threads else ''} at once"],
                     [[r["cpu_threads"], r["workers"], f"{r['single_p50_s']:.2f} s", f"{r['at_once_per_s']:.2f}/s"]
                      for r in threads]),
    ])


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "2 clips; windows 10,30 at beam 2; threads 2 × workers 1, 2", NAME)
    parser.add_argument("--real-clips", type=int, help="the first N real recordings (default all; quick 2)")
    parser.add_argument("--windows", help="window sizes in s (default 8,10,12,15,30; quick 10,30)")
    parser.add_argument("--beams", help="beam sizes (default 1,2; quick 2)")
    parser.add_argument("--threads", help="threads:workers settings (default 4:1,2:1,1:2,2:2; quick 2:1,2:2)")
    parser.add_argument("--clients", type=int, help="requests at once for the throughput (default 8; quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds over the thread settings (default 2; quick 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    quick = args.quick
    clips = common.load_clips(args.real_clips or (2 if quick else None), 0)
    windows = ints(args.windows or ("10,30" if quick else "8,10,12,15,30"))
    beams = ints(args.beams or ("2" if quick else "1,2"))
    configs = [tuple(ints(pair.replace(":", ","))) for pair in (args.threads or ("2:1,2:2" if quick else
                                                                                  "4:1,2:1,1:2,2:2")).split(",")]
    clients = args.clients or (2 if quick else 8)
    settings = Settings()
    window_rows = windows_by_beams(settings, clips, windows, beams)
    short = [c for c in clips if c.duration_s <= 6.0] or clips
    thread_rows = threads_by_workers(settings, short, configs, clients, args.rounds or (1 if quick else 2))
    text = markdown(head, window_rows, thread_rows)
    common.finish(NAME, args, head, {
        "clips": [{"clip": c.name, "source": c.source, "duration_s": round(c.duration_s, 3), "reference": c.text}
                  for c in clips],
        "window_by_beam": window_rows, "threads_by_workers": thread_rows, "markdown": text})
    return {"window_by_beam": window_rows, "threads_by_workers": thread_rows}


if __name__ == "__main__":
    main()
