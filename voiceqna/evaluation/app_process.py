"""Start `python app.py` as a process on a free loopback port and stop it: one helper for tests and benchmarks.

    with running_app(tmp / "data", ["--api-only"], {"api_key": "s3cret"}) as app:
        requests.get(f"{app.url}/health")

The process gets a clean environment: every setting is blanked (so neither the developer's
shell nor a `.env` file leaks in), then DATA_DIR, MODELS_DIR and the given settings are set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import requests

from voiceqna.config import PROJECT_ROOT, Settings

START_TIMEOUT_S = 300.0
"""Long enough for a cold start on 2 busy cores (the Whisper model and Gradio load at start)."""


STARTED: list[str] = []
"""The base URL of each app this process started (the test session reports the count)."""


class AppDidNotStart(RuntimeError):
    """The app exited or did not answer in time; the message ends with its log."""


@dataclass(frozen=True)
class AppProcess:
    url: str
    """http(s)://127.0.0.1:PORT, no trailing slash."""
    process: subprocess.Popen
    log_path: Path
    """stdout and stderr of the app, beside its data folder."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(data_dir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The app's defaults (every setting blanked), then DATA_DIR, MODELS_DIR and `settings`
    (any case: {"chat_engine": "openai"} and {"CHAT_ENGINE": "openai"} are the same)."""
    env = dict(os.environ)
    env.update({f.name.upper(): "" for f in fields(Settings)})
    env.update({"DATA_DIR": str(data_dir), "MODELS_DIR": str(PROJECT_ROOT / "models")})
    env.update({k.upper(): str(v) for k, v in settings.items()})
    return env


def api_healthy(base_url: str) -> bool:
    """GET /health answers 200 (the REST routes at the root: `--api-only`)."""
    try:
        return requests.get(f"{base_url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_app(data_dir: Path, flags: Sequence[str] = ("--api-only",), settings: Mapping[str, str] | None = None, *,
              scheme: str = "http", warm_up: bool = False, root: Path = PROJECT_ROOT,
              log_path: Path | None = None) -> AppProcess:
    """`python app.py FLAGS` from `root` on 127.0.0.1 and a free port, not waited for (see
    wait_until_ready). warm_up=False passes --no-warm-up (tests); benchmarks warm up as production
    does. The log goes to `log_path` (appended), by default server-PORT.log beside `data_dir`."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir.parent / f"server-{port}.log"
    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *flags]
    if not warm_up:
        command.append("--no-warm-up")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=root, env=server_env(data_dir, settings or {}),
                                   stdout=log, stderr=subprocess.STDOUT)
    STARTED.append(f"{scheme}://127.0.0.1:{port}")
    return AppProcess(STARTED[-1], process, log_path)


@contextmanager
def running_app(data_dir: Path, flags: Sequence[str] = ("--api-only",), settings: Mapping[str, str] | None = None,
                ready: Callable[[str], bool] = api_healthy, scheme: str = "http", warm_up: bool = False,
                start_timeout_s: float = START_TIMEOUT_S) -> Iterator[AppProcess]:
    """start_app, then yields once `ready(url)`; stops it afterwards. Raises AppDidNotStart, with
    the app's log, if it exits or is not ready in time."""
    app = start_app(data_dir, flags, settings, scheme=scheme, warm_up=warm_up)
    try:
        wait_until_ready(app, ready, start_timeout_s)
        yield app
    finally:
        stop(app.process)


def wait_until_ready(app: AppProcess, ready: Callable[[str], bool] = api_healthy,
                     start_timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + start_timeout_s
    while not ready(app.url):
        if app.process.poll() is not None:
            raise AppDidNotStart(f"app.py exited with {app.process.returncode}:\n{tail(app.log_path)}")
        if time.monotonic() > deadline:
            raise AppDidNotStart(f"app.py did not answer within {start_timeout_s:.0f} s:\n{tail(app.log_path)}")
        time.sleep(0.2)


def stop(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM (the app's graceful shutdown), then SIGKILL if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
