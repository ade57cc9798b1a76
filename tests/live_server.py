"""The app on loopback for the HTTP tests: `live_api` (the REST routes alone) and `running_app`
(any flags) over voiceqna.evaluation.app_process, the one helper benchmarks use too.

    with live_api(tmp / "data", api_key="s3cret") as base_url:
        requests.get(f"{base_url}/health")

A fixture that starts an app this way carries `@tier("server")` (tests/tiers.py), so that the
tests using it are in the full tier only; a test that starts one itself is marked `server`.
"""

from __future__ import annotations

import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import requests
import urllib3

from voiceqna.evaluation import app_process
from voiceqna.evaluation.app_process import api_healthy, free_port, server_env

__all__ = ["API_KEY", "CORS_ORIGIN", "KEYED_API_KEY", "NEVER_SHOWN_OPENAI_KEY", "free_port", "live_api", "live_page", "running_app", "server_env", "store_rows"]

API_KEY = "test-key-9f2c"
"""The key of the `locked_api_url` server (tests/conftest.py)."""
CORS_ORIGIN = "https://game.example"
KEYED_API_KEY = "keyed-api-key-41f0a9"
"""The key of the `keyed_api` server (tests/conftest.py)."""
NEVER_SHOWN_OPENAI_KEY = "sk-never-shown-3b9e55"
"""The `keyed_api` server's OPENAI_API_KEY (its chat engine is offline): no answer may show it."""


def store_rows(data_dir: Path) -> tuple[int, int]:
    """(conversations, messages) in a server's SQLite file, opened read-only."""
    with sqlite3.connect(f"file:{data_dir / 'conversations.sqlite3'}?mode=ro", uri=True) as db:
        return (db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0],
                db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


@contextmanager
def running_app(data_dir: Path, flags: list[str], settings: dict[str, str],
                ready: Callable[[str], bool] = api_healthy, scheme: str = "http") -> Iterator[str]:
    """`python app.py FLAGS --no-warm-up` on 127.0.0.1 and a free port; yields its base URL once `ready(url)`."""
    with app_process.running_app(data_dir, flags, settings, ready, scheme) as app:
        yield app.url


@contextmanager
def live_page(data_dir: Path, *flags: str, **settings: str) -> Iterator[str]:
    """`python app.py` (the page, REST under /api) on 127.0.0.1; yields its URL once both answer."""
    scheme = "https" if "--ssl" in flags else "http"
    with running_app(data_dir, list(flags), settings, page_ready, scheme) as url:
        yield url


def page_ready(url: str) -> bool:
    """The page and its REST API answer (a self-signed certificate accepted)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            api = requests.get(f"{url}/api/health", timeout=2, verify=False)
            return api.ok and requests.get(url, timeout=5, verify=False).ok
    except requests.RequestException:
        return False


@contextmanager
def live_api(data_dir: Path, **settings: str) -> Iterator[str]:
    """`python app.py --api-only` on 127.0.0.1; yields its base URL once /health answers."""
    with running_app(data_dir, ["--api-only"], settings) as base_url:
        yield base_url
