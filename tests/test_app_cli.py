"""How `python app.py` chooses where to listen, and what a Hugging Face Space reads."""

from __future__ import annotations

import re

import gradio
import pytest

from app import listen_address, parse_args, ssl_options
from tests.conftest import make_settings
from voiceqna.config import PROJECT_ROOT


@pytest.mark.parametrize("argv, env, expected", [
    ([], {}, ("0.0.0.0", 7860)),  # a Space runs plain `python app.py` and serves port 7860
    (["--api-only"], {}, ("0.0.0.0", 5000)),  # the seed's API server
    ([], {"host": "127.0.0.1", "port": "8080"}, ("127.0.0.1", 8080)),
    (["--host", "::", "--port", "9000"], {"host": "127.0.0.1", "port": "8080"}, ("::", 9000)),
])
def test_listen_address(tmp_path, argv, env, expected):
    assert listen_address(parse_args(argv), make_settings(tmp_path, **env)) == expected


def test_readme_front_matter_is_what_a_space_needs():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    front = readme.split("---")[1]
    assert re.search(r"^sdk: gradio$", front, re.M) and re.search(r"^app_file: app\.py$", front, re.M)
    # The Space installs this Gradio version: the one requirements.txt pins and the tests use.
    assert re.search(rf"^sdk_version: {re.escape(gradio.__version__)}$", front, re.M)
    assert f"gradio=={gradio.__version__}" in (PROJECT_ROOT / "requirements.txt").read_text()
    packages = (PROJECT_ROOT / "packages.txt").read_text().split()
    assert {"ffmpeg", "espeak-ng"} <= set(packages)


def test_ssl_makes_a_certificate_in_the_data_folder(tmp_path):
    options = ssl_options(parse_args(["--ssl"]), make_settings(tmp_path), 7860)
    assert options == {"ssl_certfile": str(tmp_path / "tls" / "selfsigned-cert.pem"),
                       "ssl_keyfile": str(tmp_path / "tls" / "selfsigned-key.pem")}
    assert ssl_options(parse_args([]), make_settings(tmp_path), 7860) == {}


def test_a_key_without_its_certificate_stops_with_the_fix(tmp_path):
    with pytest.raises(SystemExit, match="both --ssl-certfile and --ssl-keyfile"):
        ssl_options(parse_args(["--ssl-keyfile", str(tmp_path / "key.pem")]), make_settings(tmp_path), 7860)


def test_shutting_down_ends_the_hands_free_sessions_then_closes_the_service(tmp_path):
    """The page's lifespan: hands-free sessions end (PageHandlers.close), then the service's
    engines close. The service is a RemoteService to an address nothing listens on: nothing here
    needs a model."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app import mount_page
    from voiceqna.page import PageHandlers, build_page
    from voiceqna.remote import RemoteService

    settings = make_settings(tmp_path)
    service = RemoteService("http://127.0.0.1:9/api")
    handlers = PageHandlers(service, hands_free=settings.endpointer_options)
    handlers.hands_free.open("0123456789abcdef01234567")
    app = mount_page(FastAPI(), build_page(service, settings, handlers), settings, service,
                     on_shutdown=handlers.close)
    with TestClient(app):
        assert len(handlers.hands_free) == 1 and not service.client.is_closed
    assert len(handlers.hands_free) == 0 and service.client.is_closed
