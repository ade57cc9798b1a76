"""What does durability cost? SQLite's PRAGMA synchronous=NORMAL against FULL (WAL) for the
store's one write per turn.

    python benchmarks/sqlite_synchronous.py          # writes benchmarks/results/sqlite-synchronous.json

In WAL mode, NORMAL syncs the WAL only at checkpoints: a power loss (or an OS crash; not a
killed process) may lose the last turns that were already answered, though the file stays
consistent. FULL syncs the WAL at every COMMIT, so an answered turn survives a power cut.
Each round appends one spoken turn (a 5 s question as 16 kHz WAV and a 6 s spoken answer) and
one typed turn (text and the spoken answer) to a store of each kind, alternating which goes
first, in a file under DATA_DIR's disk (the project's data/ folder), so both see the same
disk and the same background load.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from voiceqna.engines.store_sqlite import SQLiteStore  # noqa: E402
from voiceqna.ports import Message  # noqa: E402

logger = logging.getLogger("sqlite_synchronous")

QUESTION_AUDIO = os.urandom(5 * 16_000 * 2 + 44)  # 5 s of 16 kHz 16-bit mono: what a spoken question stores
ANSWER_AUDIO = os.urandom(6 * 22_050 * 2 + 44)  # 6 s of espeak-ng's 22 kHz answer


def header(command: str) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True).stdout.strip()
    return {
        "commit": commit + ("+uncommitted changes" if dirty else ""),
        "machine": {"platform": platform.platform(), "cpu": cpu, "cores": len(os.sched_getaffinity(0))},
        "load_average": os.getloadavg(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


def summary(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2), "mean_ms": round(statistics.fmean(ms), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "data",
                        help="where the two test files go (a temporary folder inside it); default data/")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "sqlite-synchronous.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = {"header": header(f"python benchmarks/sqlite_synchronous.py --rounds {args.rounds}")}
    args.folder.mkdir(parents=True, exist_ok=True)
    times: dict[str, dict[str, list[float]]] = {mode: {"spoken": [], "typed": []} for mode in ("NORMAL", "FULL")}
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        stores = {mode: SQLiteStore(Path(folder) / f"{mode.lower()}.sqlite3", synchronous=mode) for mode in times}
        ids = {mode: store.create() for mode, store in stores.items()}
        for n in range(args.rounds):
            order = ("NORMAL", "FULL") if n % 2 == 0 else ("FULL", "NORMAL")
            for mode in order:
                for kind, question in (("spoken", Message("user", f"질문 {n}", QUESTION_AUDIO)),
                                       ("typed", Message("user", f"질문 {n}"))):
                    started = time.perf_counter()
                    stores[mode].append(ids[mode], [question, Message("assistant", f"답변 {n}", ANSWER_AUDIO)])
                    times[mode][kind].append((time.perf_counter() - started) * 1000)
        for store in stores.values():
            store.close()
    result["filesystem"] = subprocess.run(["df", "-T", str(args.folder)], capture_output=True, text=True).stdout.split("\n")[1]
    result["results"] = {mode: {kind: summary(ms) for kind, ms in kinds.items()} for mode, kinds in times.items()}
    result["full_over_normal_p50"] = {kind: round(result["results"]["FULL"][kind]["p50_ms"]
                                                  / result["results"]["NORMAL"][kind]["p50_ms"], 2)
                                      for kind in ("spoken", "typed")}
    result["header"]["load_average_end"] = os.getloadavg()
    for mode, kinds in result["results"].items():
        for kind, row in kinds.items():
            logger.info("%-6s %-6s p50 %7.2f ms  p95 %7.2f ms", mode, kind, row["p50_ms"], row["p95_ms"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    logger.info("wrote %s", args.json)


if __name__ == "__main__":
    main()
