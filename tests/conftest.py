"""Shared fixtures: settings on a temporary data folder, the real Whisper model loaded once (and
a fake recognizer for the fast tier), the real Korean recordings (skipped where absent), Korean
speech made with espeak-ng, the shared app servers; and the tier markers (tests/tiers.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from tests.fakes import FakeRecognizer
from tests.fake_openai import FakeOpenAI
from tests.live_server import (API_KEY, CORS_ORIGIN, KEYED_API_KEY, NEVER_SHOWN_OPENAI_KEY, free_port, live_api,
                               live_page)
from tests.tiers import tier, tiers_of
from voiceqna.compose import build_recognizer
from voiceqna.engines import asr_whisper
from voiceqna.evaluation import app_process
from voiceqna.config import PROJECT_ROOT, Settings
from voiceqna.evaluation import clips
from voiceqna.evaluation.clips import Clip


def make_settings(data_dir: Path, **overrides: str) -> Settings:
    """Settings as the app reads them, from an explicit environment (no .env, no os.environ)."""
    env = {"DATA_DIR": str(data_dir), "MODELS_DIR": str(PROJECT_ROOT / "models")}
    env.update({k.upper(): v for k, v in overrides.items()})
    return Settings.from_env(env, dotenv_path=None)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


def pytest_configure(config: pytest.Config) -> None:
    """Scripts the tests run (`python benchmarks/X.py`) import this checkout, not whichever one the
    venv's editable install points at (several checkouts may share one venv)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the tiers of the fixtures it uses (model, server, browser, bench)."""
    for item in items:
        for name in sorted(tiers_of(item)):
            item.add_marker(name)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if app_process.STARTED:  # benchmark scripts run by tests start theirs in processes of their own, not counted
        terminalreporter.write_line(f"app processes started by the tests: {len(app_process.STARTED)}")


@pytest.fixture(autouse=True)
def _stay_in_your_tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test not marked `model` that loads Whisper, or not marked `server` that starts the app
    through the shared helper, fails at once naming the fix: `make check` stays free of both
    however a test reaches them."""
    tiers = tiers_of(request.node)

    def refuse(what: str, fix: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"This test {what}: {fix}.")
        return refused
    if "model" not in tiers:
        monkeypatch.setattr(asr_whisper, "load_model", refuse(
            "loads the Whisper model", "use the `recognizer` fixture (model tier) or `fake_recognizer` (tests/fakes.py)"))
    if "server" not in tiers:
        monkeypatch.setattr(app_process, "start_app", refuse(
            "starts the app", 'use a server fixture of tests/conftest.py, tag its own with @tier("server"), '
            "or mark it @pytest.mark.server"))


@pytest.fixture(scope="session")
def recognizer():
    """The real bundled Whisper base model, loaded once for the whole session (model tier)."""
    return build_recognizer(make_settings(Path("/nonexistent")))


@pytest.fixture
def fake_recognizer() -> FakeRecognizer:
    """A recognizer without a model (tests/fakes.py): hears FAKE_HEARD in any sound, nothing in silence."""
    return FakeRecognizer()


@pytest.fixture(scope="session")
def read_speech() -> list[Clip]:
    """The 30 real Korean read-speech clips with their reference sentences. Where they are
    absent the tests that need them skip, saying how to get them; in CI (CI=true) they fail."""
    try:
        return clips.read_speech()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the test recordings: {exc}")
        pytest.skip(str(exc))


def espeak_wav(text: str, path: Path, rate_wpm: int = 130) -> Path:
    """Korean speech from espeak-ng (robotic: for plumbing, not for accuracy), written to `path`."""
    try:
        path.write_bytes(clips.espeak(text, rate_wpm))
    except FileNotFoundError as exc:
        pytest.fail(f"{exc}; `make test` installs it")
    return path


@pytest.fixture
def korean_wav(tmp_path: Path):
    """Factory: korean_wav("안녕하세요") -> Path of a WAV of espeak-ng saying it."""
    counter = iter(range(1_000_000))
    return lambda text, rate_wpm=130: espeak_wav(text, tmp_path / f"espeak-{next(counter)}.wav", rate_wpm)


# --- live REST API servers (python app.py --api-only on loopback), shared by the HTTP tests ---
# One server per configuration for the whole session: a module needing another configuration
# adds one here rather than starting its own, where its tests allow.


@pytest.fixture(scope="session")
@tier("server")
def api_url(tmp_path_factory) -> Iterator[str]:
    """An open API server as the seed ran it: offline engines, SQLite; uploads limited to 1 MB."""
    with live_api(tmp_path_factory.mktemp("api") / "data", max_upload_mb="1") as url:
        yield url


@pytest.fixture(scope="session")
@tier("server")
def locked_api_url(tmp_path_factory) -> Iterator[str]:
    """A server that needs API_KEY, allows CORS from one origin, accepts 2 s of audio, and whose
    chat engine is an OpenAI-compatible server that is down (every answer fails with 503)."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with live_api(tmp_path_factory.mktemp("locked-api") / "data", api_key=API_KEY, cors_origins=CORS_ORIGIN,
                  max_audio_s="2", chat_engine="openai", openai_api_key="unused", openai_base_url=dead) as url:
        yield url


@pytest.fixture(scope="session")
def openai_fake() -> Iterator[FakeOpenAI]:
    """One FAKE OpenAI-compatible server (OpenAI cannot be reached here) for the session; a module
    sets its behaviour with `openai_fake.reset(answer=...)` and resets it when done."""
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture(scope="session")
@tier("server")
def openai_api(tmp_path_factory, openai_fake) -> Iterator[tuple[str, Path]]:
    """(URL, DATA_DIR) of a server whose chat engine is `openai_fake`; speech by espeak-ng,
    uploads limited to 1 MB."""
    data_dir = tmp_path_factory.mktemp("openai-api") / "data"
    with live_api(data_dir, chat_engine="openai", openai_api_key="fake", openai_base_url=openai_fake.base_url,
                  max_upload_mb="1") as url:
        yield url, data_dir


@pytest.fixture(scope="session")
@tier("server")
def keyed_api(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(URL, DATA_DIR) of a server that needs KEYED_API_KEY, with the offline chat engine (and an
    OPENAI_API_KEY it must never show), uploads up to 2 MB and 30 s of audio."""
    data_dir = tmp_path_factory.mktemp("keyed-api") / "data"
    with live_api(data_dir, api_key=KEYED_API_KEY, openai_api_key=NEVER_SHOWN_OPENAI_KEY, chat_engine="offline",
                  max_upload_mb="2", max_audio_s="30") as url:
        yield url, data_dir


@pytest.fixture(scope="session")
@tier("server")
def https_page(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """`python app.py --ssl` (the page and REST under /api) on its defaults: (URL, DATA_DIR, the
    self-signed certificate it made)."""
    data_dir = tmp_path_factory.mktemp("page-https") / "data"
    with live_page(data_dir, "--ssl") as url:
        yield url, data_dir, data_dir / "tls" / "selfsigned-cert.pem"
