"""Latency of POST /send/audio/<id> against a running API server, as a client sees it.

    python app.py --api-only --port 5000 &
    python benchmarks/api_send_audio.py --url http://127.0.0.1:5000 --clip question.wav -n 10

Each request goes to a fresh conversation (so history does not grow). Prints the median,
min and max wall time and the server's median stage timings (timings_ms).
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--clip", required=True, help="an audio file (WAV, WebM, …)")
    parser.add_argument("-n", type=int, default=10, help="timed requests (after one untimed warm-up)")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args()

    session = requests.Session()
    if args.api_key:
        session.headers["Authorization"] = f"Bearer {args.api_key}"
    data = open(args.clip, "rb").read()
    walls, stages = [], []
    for i in range(args.n + 1):
        conversation_id = session.post(f"{args.url}/create", json={}).json()["id"]
        started = time.perf_counter()
        response = session.post(f"{args.url}/send/audio/{conversation_id}", files={"audio": ("clip", data)})
        wall = (time.perf_counter() - started) * 1000
        response.raise_for_status()
        if i == 0:
            print(f"warm-up {wall:.0f} ms, transcript: {response.json()['transcript']}")
            continue
        walls.append(wall)
        stages.append(response.json()["timings_ms"])
    print(f"/send/audio over {args.n} requests: median {statistics.median(walls):.0f} ms "
          f"(min {min(walls):.0f}, max {max(walls):.0f})")
    print("server median per stage (ms): " + ", ".join(
        f"{k} {statistics.median(s[k] for s in stages):.0f}" for k in stages[0]))


if __name__ == "__main__":
    main()
