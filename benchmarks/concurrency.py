"""Spoken turns from 1, 4 and 8 clients at once over REST: throughput and the wait of each client.

    python benchmarks/concurrency.py             # starts the app on its defaults; 24 turns a level, 2 rounds (~4 min)
    python benchmarks/concurrency.py --quick     # 1 and 2 clients, 4 turns a level, 1 round
    python benchmarks/concurrency.py --url http://127.0.0.1:5000

Each client has its own conversation and sends POST /send/audio with clips of up to 6 s (the
real recordings and espeak-ng questions), one after the other; a level's clients start
together and share its `--turns` turns. The levels are interleaved over `--rounds` rounds
(throughput: median of the rounds). Reported per level: turns a second, × the one-client
figure of the same run, each turn's wait (p50/p95, what the client waits) and every error.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np


from benchmarks import common

NAME = "concurrency"
MAX_CLIP_S = 6.0


def one_level(server: common.Server, clips: list[common.Clip], clients: int, turns_per_client: int) -> dict:
    waits: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    setup = common.Api(server.url, server.headers)
    conversations = [setup.create() for _ in range(clients)]
    setup.close()

    def client(k: int) -> None:
        api = common.Api(server.url, server.headers)
        conversation = conversations[k]
        start.wait()
        for j in range(turns_per_client):
            clip = clips[(k * turns_per_client + j) % len(clips)]
            try:
                _, waited = api.send_audio(conversation, clip.wav)
                with lock:
                    waits.append(waited)
            except Exception as exc:  # counted and reported, never hidden
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        api.close()

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, k) for k in range(clients)]
        start.wait()
        started = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started
    return {"waits_s": waits, "errors": errors, "wall_s": wall, "turns_per_s": len(waits) / wall,
            "load_average_1m": round(os.getloadavg()[0], 2)}


def run(server: common.Server, clips: list[common.Clip], levels: list[int], turns: int, rounds: int) -> dict:
    api = common.Api(server.url, server.headers)
    api.send_audio(api.create(), clips[0].wav)  # untimed first turn
    api.close()
    runs: dict[int, list[dict]] = {clients: [] for clients in levels}
    for _ in range(rounds):
        for clients in levels:
            runs[clients].append(one_level(server, clips, clients, max(1, turns // clients)))
            common.logger.info("%d clients: %.2f turns/s", clients, runs[clients][-1]["turns_per_s"])
    out = {}
    for clients, results in runs.items():
        waits = [w for r in results for w in r["waits_s"]]
        out[str(clients)] = {"clients": clients, "turns": len(waits),
                             "turns_per_s": float(np.median([r["turns_per_s"] for r in results])),
                             "wait_s": common.p50_p95(waits), "errors": [e for r in results for e in r["errors"]],
                             "rounds": results}
    one = out[str(levels[0])]["turns_per_s"]
    for row in out.values():
        row["throughput_vs_first_level"] = row["turns_per_s"] / one if one else None
    return out


def markdown(head: dict, info: dict, levels: dict) -> str:
    rows = [[row["clients"], f"{row['turns_per_s']:.2f}", f"{row['throughput_vs_first_level']:.2f}",
             f"{common.fmt(row['wait_s']['p50'])} / {common.fmt(row['wait_s']['p95'])} s", len(row["errors"])]
            for row in levels.values()]
    return "\n".join([f"Spoken turns at once over REST: {info.get('recognizer')}, {info.get('chat')}, "
                      f"{info.get('tts')}. {common.header_line(head)}", "",
                      common.table(["clients", "turns/s", "× first level", "wait p50 / p95", "errors"], rows)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "1 and 2 clients, 4 turns a level, 1 round", NAME)
    parser.add_argument("--url", help="a running server on loopback (default: start the app on its defaults)")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--clients", help="levels, comma-separated (default 1,4,8; quick 1,2)")
    parser.add_argument("--turns", type=int, help="turns per level, shared by its clients (default 24; quick 4)")
    parser.add_argument("--rounds", type=int, help="rounds over the levels (default 2; quick 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    levels = [int(x) for x in (args.clients or ("1,2" if args.quick else "1,4,8")).split(",")]
    turns = args.turns or (4 if args.quick else 24)
    rounds = args.rounds or (1 if args.quick else 2)
    clips = [c for c in common.load_clips(4 if args.quick else None, 0 if args.quick else 8)
             if c.duration_s <= MAX_CLIP_S]
    if args.url:
        common.require_loopback(args.url)
    server = nullcontext(common.Server(args.url.rstrip("/"), 0, args.api_key)) if args.url else common.app_server()
    with server as running:
        api = common.Api(running.url, running.headers)
        info = api.info()
        api.close()
        result = run(running, clips, levels, turns, rounds)
    text = markdown(head, info, result)
    common.finish(NAME, args, head, {
        "server": {"url": "own" if not args.url else "given", "info": info},
        "clips": [{"clip": c.name, "source": c.source, "duration_s": round(c.duration_s, 3)} for c in clips],
        "levels": result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
