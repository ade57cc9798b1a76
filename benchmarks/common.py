"""Shared by the benchmark scripts: test clips, the results file and its header, percentiles and the app on loopback.

Every script writes `benchmarks/results/<name>.json` (`<name>-quick.json` with --quick, not
committed): the header below — commit, machine, load average at start and end (1/5/15 min),
date, command — then the script's own sections. Clips come from `voiceqna.evaluation.clips`
(the real recordings and espeak-ng).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np
import psutil

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import PROJECT_ROOT as ROOT
from voiceqna.evaluation import clips as clip_sources
from voiceqna.evaluation import metrics
from voiceqna.evaluation.app_process import AppDidNotStart, running_app

logger = logging.getLogger("benchmark")

RESULTS = ROOT / "benchmarks" / "results"
QUESTIONS = (
    "안녕하세요, 오늘 날씨 어때요?",
    "한국에서 가장 높은 산은 어디예요?",
    "서울에서 부산까지 얼마나 걸려요?",
    "김치는 어떻게 만들어요?",
    "제주도에 가면 뭘 해야 해요?",
    "한글은 누가 만들었어요?",
    "스트레스 해소법 좀 알려 주세요.",
    "한국의 수도는 어디예요?",
)
"""Korean questions: typed as they are, or spoken by espeak-ng (2.5-4 s at 130 words a minute)."""
SHORT_S = (2.0, 4.0)
"""Clips of about 3 s, the length of a spoken question."""


# --- clips -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    name: str
    source: str
    """"real" (a read-speech recording) or "espeak" (espeak-ng's Korean voice)."""
    text: str
    """What is said in it."""
    wav: bytes
    samples: np.ndarray
    """16 kHz mono float32, as the recognizer gets it."""

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE

    @property
    def short(self) -> bool:
        return SHORT_S[0] <= self.duration_s <= SHORT_S[1]


def real_clips(limit: int | None = None) -> list[Clip]:
    """The real Korean recordings (all 30, or the first `limit`); none, with a warning, where absent."""
    try:
        sources = clip_sources.read_speech()
    except FileNotFoundError as exc:
        logger.warning("%s: espeak-ng clips only", exc)
        return []
    out = []
    for source in sources[:limit]:
        wav = source.path.read_bytes()
        out.append(Clip(source.path.name, "real", source.text, wav, decode(wav)))
    return out


def espeak_clips(count: int = len(QUESTIONS), rate_wpm: int = 130) -> list[Clip]:
    """The first `count` QUESTIONS spoken by espeak-ng (robotic: plumbing and speed, not accuracy)."""
    out = []
    for i, text in enumerate(QUESTIONS[:count]):
        wav = clip_sources.espeak(text, rate_wpm)
        out.append(Clip(f"espeak-{i}", "espeak", text, wav, decode(wav)))
    return out


def load_clips(real: int | None, espeak: int) -> list[Clip]:
    """The first `real` recordings (None: all) and `espeak` espeak-ng questions (at least one
    where the recordings are absent)."""
    clips = real_clips(real)
    clips += espeak_clips(espeak if clips or espeak else 1)
    if not clips:
        raise SystemExit("No clips: neither the real recordings nor espeak-ng are available.")
    logger.info("%d clips (%d real, %d espeak-ng)", len(clips), sum(c.source == "real" for c in clips),
                sum(c.source == "espeak" for c in clips))
    return clips


# --- figures -----------------------------------------------------------------------------------


def p50_p95(values: Sequence[float]) -> dict[str, float | None]:
    """{"p50", "p95", "n"}: linear interpolation (voiceqna.evaluation.metrics); None for no values."""
    if len(values) == 0:
        return {"p50": None, "p95": None, "n": 0}
    return {**metrics.percentiles(list(values), (50, 95)), "n": len(values)}


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """{"n", "p50", "p95", "max"} rounded to `digits`; {"n": 0} for no values."""
    if len(values) == 0:
        return {"n": 0}
    p = metrics.percentiles(list(values), (50, 95))
    return {"n": len(values), "p50": round(p["p50"], digits), "p95": round(p["p95"], digits),
            "max": round(float(max(values)), digits)}


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the results file --------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = None
    if shutil.which("nvidia-smi"):
        try:
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            gpu = None
    import ctranslate2
    import faster_whisper

    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu,
        "python": platform.python_version(),
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
    }


def _git(*args: str) -> str:
    """git's output, trailing newlines removed (leading spaces are meaningful in `status --porcelain`)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.rstrip("\n")
    except (OSError, subprocess.SubprocessError):
        return ""


def header(name: str, argv: Sequence[str], quick: bool) -> dict:
    """What every results file starts with. `dirty` lists changed files outside benchmarks/results."""
    changed = [line[3:] for line in _git("status", "--porcelain").splitlines()
               if not line[3:].startswith("benchmarks/results/")]
    return {
        "benchmark": name,
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": changed,
        "machine": machine(),
        "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", f"benchmarks/{name}.py", *argv]),
        "quick": quick,
    }


def results_path(name: str, quick: bool, out: Path | None = None) -> Path:
    return out or RESULTS / (f"{name}-quick.json" if quick else f"{name}.json")


def write_results(path: Path, head: dict, sections: dict) -> Path:
    """The header (load average at the end added), then the script's sections, as JSON."""
    head = {**head, "load_average": {**head["load_average"], "end": [round(x, 2) for x in os.getloadavg()]},
            "wall_s": round(time.time() - datetime.fromisoformat(head["date"]).timestamp(), 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**head, **sections}, ensure_ascii=False, indent=1, default=_plain) + "\n")
    logger.info("Wrote %s", path)
    return path


def _plain(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def header_line(head: dict) -> str:
    """One line for the printed summary: the machine, its load and the commit."""
    m = head["machine"]
    memory = f", {m['memory_gb']} GB" if m.get("memory_gb") else ""  # older files did not record it
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    load = "/".join(f"{x:.1f}" for x in head["load_average"]["start"])
    return (f"{m['cpu']}, {m['cores']} cores{memory}{gpu}; load average {load} at start; "
            f"commit {head['commit'][:10]}{' (changed files)' if head['dirty'] else ''}; {head['date']}")


def arguments(doc: str, quick: str, name: str) -> argparse.ArgumentParser:
    """A benchmark's command line with the options every script has: `--quick` (a run of
    seconds, for the tests; `quick` says what it runs) and `--out` (alias `--json`; default
    benchmarks/results/<name>.json)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--out", "--json", dest="out", type=Path,
                        help=f"results file (default benchmarks/results/{name}.json)")
    return parser


def start(script: str, parse: Callable[[list[str]], argparse.Namespace],
          argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict]:
    """Parse the command line (`sys.argv` when `argv` is None), set up logging, and take the
    results header (`script`: the file name under benchmarks/ without .py)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    setup_logging()
    return args, header(script, argv, args.quick)


def finish(name: str, args: argparse.Namespace, head: dict, sections: dict) -> Path:
    """Write the results file (`--out`, or results/<name>[-quick].json) and print the summary
    the script rendered (`sections["markdown"]`)."""
    path = write_results(results_path(name, args.quick, args.out), head, sections)
    print(sections["markdown"])
    return path


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


# --- the app on loopback -----------------------------------------------------------------------


def require_loopback(url: str) -> None:
    """SystemExit unless `url` is on this machine: the load scripts drive only local servers."""
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        raise SystemExit(f"Cannot resolve {host!r}: give a loopback URL such as http://127.0.0.1:5000") from None
    if not address.is_loopback:
        raise SystemExit(f"{url} is not on loopback: the benchmarks only drive a server on this machine.")


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}


@contextmanager
def app_server(settings: dict[str, str] | None = None, api_key: bool = False,
               start_timeout_s: float = 300.0) -> Iterator[Server]:
    """`python app.py --api-only` (warm-up included, as in production) on a free loopback port,
    with a temporary DATA_DIR; yields once /health answers, stops it afterwards."""
    key = secrets.token_hex(16) if api_key else ""
    folder = Path(tempfile.mkdtemp(prefix="voiceqna-bench-"))
    try:
        with running_app(folder / "data", ["--api-only"], {**(settings or {}), "API_KEY": key}, warm_up=True,
                         start_timeout_s=start_timeout_s) as app:
            yield Server(app.url, app.process.pid, key)
    except AppDidNotStart as exc:
        raise SystemExit(f"The app did not start: {exc}") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Api:
    """The REST routes as a client calls them, timing what the client waits: from sending the
    request to the whole answer read and parsed. One per thread (httpx.Client)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout_s: float = 600.0) -> None:
        import httpx

        self.client = httpx.Client(base_url=url, headers=headers or {}, timeout=timeout_s)

    def create(self) -> str:
        response = self.client.post("/create", json={})
        response.raise_for_status()
        return response.json()["id"]

    def send_audio(self, conversation_id: str, wav: bytes) -> tuple[dict, float]:
        """(the JSON answer, seconds waited); raises for a status other than 200."""
        started = time.perf_counter()
        response = self.client.post(f"/send/audio/{conversation_id}", files={"audio": ("question.wav", wav, "audio/wav")})
        return self._answer(response, started)

    def send_text(self, conversation_id: str, text: str) -> tuple[dict, float]:
        started = time.perf_counter()
        response = self.client.post(f"/send/text/{conversation_id}", json={"message": text, "role": "user"})
        return self._answer(response, started)

    @staticmethod
    def _answer(response, started: float) -> tuple[dict, float]:
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url.path}: {response.status_code} {response.text[:200]}")
        body = response.json()
        return body, time.perf_counter() - started

    def info(self) -> dict:
        return self.client.get("/info").json()

    def close(self) -> None:
        self.client.close()
