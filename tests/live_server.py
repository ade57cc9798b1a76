"""Run the real app as a subprocess on a free loopback port, for tests that go over HTTP.

    with live_api(tmp / "data", api_key="s3cret") as base_url:
        requests.get(f"{base_url}/health")

The server gets a clean environment: every setting is blanked (so neither the developer's
shell nor a `.env` file leaks in), then DATA_DIR, MODELS_DIR and the overrides are set.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

from voiceqna.config import PROJECT_ROOT, Settings

START_TIMEOUT_S = 240.0
API_KEY = "test-key-9f2c"
"""The key of the `locked_api_url` server (tests/conftest.py)."""
CORS_ORIGIN = "https://game.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def store_rows(data_dir: Path) -> tuple[int, int]:
    """(conversations, messages) in a server's SQLite file, opened read-only."""
    with sqlite3.connect(f"file:{data_dir / 'conversations.sqlite3'}?mode=ro", uri=True) as db:
        return (db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def server_env(data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update({f.name.upper(): "" for f in fields(Settings)})
    env.update({"DATA_DIR": str(data_dir), "MODELS_DIR": str(PROJECT_ROOT / "models")})
    env.update({k.upper(): str(v) for k, v in overrides.items()})
    return env


@contextmanager
def running_app(data_dir: Path, flags: list[str], settings: dict[str, str],
                ready: Callable[[str], bool], scheme: str = "http") -> Iterator[str]:
    """`python app.py FLAGS` on 127.0.0.1 and a free port; yields its base URL once `ready(url)`."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"server-{port}.log"
    command = [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), "--no-warm-up", *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=server_env(data_dir, settings),
                                   stdout=log, stderr=subprocess.STDOUT)
    base_url = f"{scheme}://127.0.0.1:{port}"
    try:
        wait_until_ready(base_url, process, log_path, ready)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_healthy(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_until_ready(base_url: str, process: subprocess.Popen, log_path: Path,
                     ready: Callable[[str], bool] = api_healthy) -> None:
    """Until `ready(base_url)`; fails with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready(base_url):
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"app.py did not answer within {START_TIMEOUT_S:.0f} s:\n{tail(log_path)}")
        time.sleep(0.2)


@contextmanager
def live_api(data_dir: Path, **settings: str) -> Iterator[str]:
    """`python app.py --api-only` on 127.0.0.1; yields its base URL once /health answers."""
    with running_app(data_dir, ["--api-only"], settings, api_healthy) as base_url:
        yield base_url


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
