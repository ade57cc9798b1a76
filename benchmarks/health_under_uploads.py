"""Does the API stay responsive while big bodies come and go? /health latency while 10 clients
send and fetch 20 MB JSON bodies, for this checkout and for a baseline commit, in one run.

    python benchmarks/health_under_uploads.py --baseline-commit 3c3a230
        # writes benchmarks/results/health-under-uploads.json
    python benchmarks/health_under_uploads.py --baseline-commit 3c3a230 --quick
        # 2 clients, 1 round of 5 s (2 s idle): health-under-uploads-quick.json

Each variant is a real `python app.py --api-only` on loopback (offline engines, SQLite, a
fresh DATA_DIR; the baseline runs from a temporary git worktree of its commit). Ten client
threads, in a process of their own, each repeat: POST /create with a 20 MB JSON body (one
message with 15 MB of audio as base64: parsed, decoded, stored), then GET that conversation
back (a 20 MB JSON answer). Meanwhile this process asks /health every 100 ms and records how
long each answer took (and first, for IDLE_S, with no load at all: the machine's floor).
Variants alternate over `--rounds`, so both see the same background load. The target: /health
p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks import common
from voiceqna.evaluation import app_process

PROJECT_ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger("health_under_uploads")

SCRIPT = "health_under_uploads"
"""benchmarks/health_under_uploads.py: the results header's `benchmark`."""
NAME = "health-under-uploads"
"""The results file: benchmarks/results/health-under-uploads.json."""

AUDIO_BYTES = 15 * 1024 * 1024
"""15 MB of audio: 20 MB as base64 in JSON."""
PROBE_EVERY_S = 0.1
IDLE_S = 10.0
"""/health is first probed this long with no load: what this machine gives at best (its floor)."""


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()


class Server:
    """`python app.py --api-only` from `root` on a free loopback port, with a fresh DATA_DIR."""

    def __init__(self, root: Path, data_dir: Path, log: Path) -> None:
        settings = {"MAX_UPLOAD_MB": "25", "CHAT_ENGINE": "offline", "TTS_ENGINE": "none"}
        app = app_process.start_app(data_dir, ["--api-only", "--log-level", "WARNING"], settings, root=root, log_path=log)
        self.url, self.process = app.url, app.process
        try:
            app_process.wait_until_ready(app, start_timeout_s=240)
        except app_process.AppDidNotStart as exc:
            raise SystemExit(f"the server from {root} did not start: {exc}") from None

    def stop(self) -> None:
        app_process.stop(self.process)


def clients(url: str, count: int, stop: multiprocessing.Event, done: multiprocessing.Queue) -> None:
    """The load, in a process of its own (its threads never hold this process's GIL)."""
    audio = base64.b64encode(os.urandom(AUDIO_BYTES)).decode()
    body = json.dumps({"messages": ["긴 녹음"], "roles": ["user"], "audios": [audio]}).encode()
    headers = {"Content-Type": "application/json"}
    counts = {"create": 0, "get": 0, "errors": 0}
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                created = session.post(f"{url}/create", data=body, headers=headers, timeout=300)
                got = session.get(f"{url}/{created.json()['id']}", timeout=300) if created.status_code == 201 else None
                ok = got is not None and got.status_code == 200 and len(got.content) > len(audio)
            except (requests.RequestException, ValueError, KeyError):
                ok = False
            with lock:
                if ok:
                    counts["create"] += 1
                    counts["get"] += 1
                else:
                    counts["errors"] += 1

    threads = [threading.Thread(target=client) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.put(counts)


def measure(url: str, count: int, seconds: float) -> dict:
    stop, done = multiprocessing.Event(), multiprocessing.Queue()
    load = multiprocessing.Process(target=clients, args=(url, count, stop, done))
    load.start()
    if count:
        time.sleep(min(5.0, seconds / 4))  # the clients get going
    latencies, failures = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            requests.get(f"{url}/health", timeout=30).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
        except requests.RequestException:
            failures += 1
        time.sleep(max(0.0, PROBE_EVERY_S - (time.perf_counter() - started)))
    stop.set()
    counts = done.get(timeout=600)
    load.join()
    return {"latencies_ms": latencies, "health_failures": failures, "requests": counts}


def summary(runs: list[dict]) -> dict:
    ms = sorted(x for run in runs for x in run["latencies_ms"])
    pick = lambda q: round(ms[min(len(ms) - 1, int(q * (len(ms) - 1)))], 1)  # noqa: E731
    return {"health_probes": len(ms), "health_failures": sum(r["health_failures"] for r in runs),
            "p50_ms": round(statistics.median(ms), 1), "p95_ms": pick(0.95), "p99_ms": pick(0.99),
            "max_ms": round(ms[-1], 1),
            "requests": {k: sum(r["requests"][k] for r in runs) for k in runs[0]["requests"]}}


def markdown(head: dict, result: dict) -> str:
    """The printed summary: /health under load and idle, for the baseline and this checkout."""
    rows = []
    for variant in ("baseline", "this"):
        for load, r in (("uploads", result[variant]), ("idle", result["idle"][variant])):
            requests_ = r["requests"]
            rows.append([variant, load, r["health_probes"], r["health_failures"], f"{r['p50_ms']:.1f}",
                         f"{r['p95_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['max_ms']:.1f}",
                         f"{requests_['create']} / {requests_['get']} / {requests_['errors']}"])
    return "\n".join([
        f"/health while clients send and fetch 20 MB bodies; baseline {result['baseline_commit'][:10]}. "
        f"{common.header_line(head)}", "",
        common.table(["variant", "load", "probes", "failures", "p50 ms", "p95 ms", "p99 ms", "max ms",
                      "create / get / errors"], rows), "",
        f"Baseline p95 over this p95: x{result['baseline_p95_over_this_p95']:g} (target: {result['target']})."])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "2 clients, 1 round of 5 s, 2 s idle (unless given)", NAME)
    parser.add_argument("--baseline-commit", required=True, help="the commit to compare with (e.g. the one before the fix)")
    parser.add_argument("--clients", type=int, help="upload clients (default 10; quick 2)")
    parser.add_argument("--seconds", type=float, help="of /health probing per variant and round (default 30; quick 5)")
    parser.add_argument("--rounds", type=int, help="rounds, the variants alternating (default 2; quick 1)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.clients = args.clients or (2 if quick else 10)
    args.seconds = args.seconds or (5.0 if quick else 30.0)
    args.rounds = args.rounds or (1 if quick else 2)
    return args


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(SCRIPT, parse_args, argv)
    idle_s = 2.0 if args.quick else IDLE_S
    baseline = git("rev-parse", args.baseline_commit)
    result = {"baseline_commit": baseline, "target": "/health p95 < 200 ms"}
    work = Path(tempfile.mkdtemp(prefix="health-under-uploads-"))
    baseline_root = work / "baseline"
    git("worktree", "add", "--detach", str(baseline_root), baseline)
    runs: dict[str, list[dict]] = {"baseline": [], "this": []}
    idle: dict[str, list[dict]] = {"baseline": [], "this": []}
    try:
        for round_ in range(args.rounds):
            order = ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline")
            for variant in order:
                root = baseline_root if variant == "baseline" else PROJECT_ROOT
                data_dir = work / f"{variant}-{round_}" / "data"
                server = Server(root, data_dir, work / f"{variant}-{round_}.log")
                try:
                    idle[variant].append(measure(server.url, 0, idle_s))  # the machine's floor, no load
                    run = measure(server.url, args.clients, args.seconds)
                finally:
                    server.stop()
                    shutil.rmtree(data_dir, ignore_errors=True)
                runs[variant].append(run)
                s = summary([run])
                logger.info("round %d %-8s /health p50 %6.1f ms  p95 %7.1f ms  max %7.1f ms  %s", round_ + 1, variant,
                            s["p50_ms"], s["p95_ms"], s["max_ms"], s["requests"])
    finally:
        git("worktree", "remove", "--force", str(baseline_root))
        shutil.rmtree(work, ignore_errors=True)
    result["baseline"], result["this"] = summary(runs["baseline"]), summary(runs["this"])
    result["idle"] = {variant: summary(idle[variant]) for variant in idle}
    result["baseline_p95_over_this_p95"] = round(result["baseline"]["p95_ms"] / result["this"]["p95_ms"], 1)
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
