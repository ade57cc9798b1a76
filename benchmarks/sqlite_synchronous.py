"""What does durability cost? SQLite's PRAGMA synchronous=NORMAL against FULL (WAL) for the
store's one write per turn.

    python benchmarks/sqlite_synchronous.py          # writes benchmarks/results/sqlite-synchronous.json
    python benchmarks/sqlite_synchronous.py --quick  # 20 rounds: sqlite-synchronous-quick.json

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
import logging
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import common
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.ports import Message

PROJECT_ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger("sqlite_synchronous")

SCRIPT = "sqlite_synchronous"
"""benchmarks/sqlite_synchronous.py: the results header's `benchmark`."""
NAME = "sqlite-synchronous"
"""The results file: benchmarks/results/sqlite-synchronous.json."""

QUESTION_AUDIO = os.urandom(5 * 16_000 * 2 + 44)  # 5 s of 16 kHz 16-bit mono: what a spoken question stores
ANSWER_AUDIO = os.urandom(6 * 22_050 * 2 + 44)  # 6 s of espeak-ng's 22 kHz answer


def summary(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2), "mean_ms": round(statistics.fmean(ms), 2)}


def markdown(head: dict, result: dict) -> str:
    """The printed summary: each mode's append times, and FULL over NORMAL."""
    rows = [[mode, kind, row["n"], f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}", f"{row['mean_ms']:.2f}"]
            for mode, kinds in result["results"].items() for kind, row in kinds.items()]
    ratio = result["full_over_normal_p50"]
    return "\n".join([
        f"SQLite synchronous=NORMAL against FULL (WAL), one turn appended per round. {common.header_line(head)}", "",
        f"Filesystem: {result['filesystem']}", "",
        common.table(["synchronous", "turn", "appends", "p50 ms", "p95 ms", "mean ms"], rows), "",
        f"FULL over NORMAL, p50: spoken turns x{ratio['spoken']:.2f}, typed turns x{ratio['typed']:.2f}."])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "20 rounds (unless --rounds)", NAME)
    parser.add_argument("--rounds", type=int, help="rounds of appends per mode (default 300; quick 20)")
    parser.add_argument("--folder", type=Path, default=PROJECT_ROOT / "data",
                        help="where the two test files go (a temporary folder inside it); default data/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(SCRIPT, parse_args, argv)
    rounds = args.rounds or (20 if args.quick else 300)
    result = {}
    args.folder.mkdir(parents=True, exist_ok=True)
    times: dict[str, dict[str, list[float]]] = {mode: {"spoken": [], "typed": []} for mode in ("NORMAL", "FULL")}
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        stores = {mode: SQLiteStore(Path(folder) / f"{mode.lower()}.sqlite3", synchronous=mode) for mode in times}
        ids = {mode: store.create() for mode, store in stores.items()}
        for n in range(rounds):
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
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
