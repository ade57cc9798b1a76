"""Security basics: with API_KEY set nothing but /health answers without it (REST routes, docs,
the page and the page's own API); ids are random; uploads never reach a path the client named."""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocket

from app import build_app
from tests.conftest import make_settings
from tests.live_server import KEYED_API_KEY
from voiceqna.api import create_api
from voiceqna.compose import build_service
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.config import PROJECT_ROOT
from voiceqna.ports import ID_PATTERN, new_id

KEY = KEYED_API_KEY


@pytest.fixture(scope="module")
def server(keyed_api) -> tuple[str, Path]:
    """The session's keyed server (tests/conftest.py): (URL, DATA_DIR)."""
    return keyed_api


def test_with_an_api_key_no_rest_route_answers_without_it(server):
    url, _ = server
    conversation_id = requests.post(f"{url}/create", json={}, headers={"X-API-Key": KEY}, timeout=30).json()["id"]
    schema = requests.get(f"{url}/openapi.json", headers={"X-API-Key": KEY}, timeout=30).json()
    routes = [(method.upper(), path.replace("{conversation_id}", conversation_id))
              for path, methods in schema["paths"].items() for method in methods]
    assert len(routes) >= 7
    others = [("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"), ("GET", "/no/such/route"),
              ("DELETE", f"/{conversation_id}")]
    for method, path in routes + others:
        if path == "/health":
            continue
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
            response = requests.request(method, f"{url}{path}", headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["type"] == "Unauthorized" and "wrong" not in response.text
    assert requests.get(f"{url}/health", timeout=30).json() == {"status": "ok"}
    assert len(requests.get(f"{url}/{conversation_id}", headers={"X-API-Key": KEY}, timeout=30).json()) == 0


@pytest.mark.parametrize("headers, status", [
    ({"X-API-Key": KEY}, 200),
    ({"Authorization": f"Bearer {KEY}"}, 200),
    ({"Authorization": f"bearer {KEY}"}, 200),
    ({"X-API-Key": KEY[:-1]}, 401),
    ({"X-API-Key": KEY + "0"}, 401),
    ({"X-API-Key": KEY.upper()}, 401),
    ({"Authorization": KEY}, 401),
    ({"Authorization": "Basic " + base64.b64encode(f"user:{KEY}".encode()).decode()}, 401),
    ({"Authorization": "Bearer "}, 401),
], ids=["x-api-key", "bearer", "bearer-lower-case", "prefix", "longer", "upper-case", "no-scheme", "basic-auth",
        "empty-bearer"])
def test_the_key_must_match_whole(server, headers, status):
    url, _ = server
    assert requests.get(f"{url}/info", headers=headers, timeout=30).status_code == status


def test_the_page_and_its_own_api_need_the_key_too(tmp_path, fake_recognizer):
    """The app as `python app.py` builds it: the real page at /, the REST routes at /api."""
    settings = make_settings(tmp_path / "data", api_key=KEY)
    client = TestClient(build_app(settings, build_service(settings, fake_recognizer), api_only=False))
    assert client.get("/").status_code == 200  # the login form
    for method, path in [("GET", "/config"), ("GET", "/gradio_api/info"), ("POST", "/gradio_api/queue/join"),
                         ("POST", "/gradio_api/upload"), ("GET", "/gradio_api/file=/etc/hostname"),
                         ("GET", "/api/info"), ("POST", "/api/create"), ("GET", "/api/docs")]:
        assert client.request(method, path, json={"data": ["a"]}).status_code == 401, (method, path)
    for path in ("/openapi.json", "/docs", "/redoc"):  # the root app's own docs are off, key or not
        assert client.get(path).status_code == 404, path
        assert client.get(path, headers={"X-API-Key": KEY}).status_code == 404, path
    assert client.get("/api/health").status_code == 200
    assert client.post("/login", data={"username": "me", "password": "wrong"}).status_code != 200
    assert client.get("/config").status_code == 401
    assert client.post("/login", data={"username": "me", "password": KEY}).status_code == 200
    assert client.get("/config").status_code == 200 and client.get("/gradio_api/info").status_code == 200
    assert client.post("/api/create", json={}, headers={"X-API-Key": KEY}).status_code == 201


def test_without_a_key_the_page_opens_directly(tmp_path, fake_recognizer):
    settings = make_settings(tmp_path / "data")
    client = TestClient(build_app(settings, build_service(settings, fake_recognizer), api_only=False))
    assert client.get("/config").status_code == 200 and client.get("/api/health").status_code == 200


def test_ids_are_random_not_sequential(server):
    ids = [new_id() for _ in range(1000)]
    assert all(ID_PATTERN.fullmatch(i) for i in ids) and len(set(ids)) == 1000
    random_parts = [int(i[8:], 16) for i in ids]  # after the 4-byte time prefix
    steps = {b - a for a, b in zip(random_parts, random_parts[1:])}
    assert len(steps) > 990  # no fixed step from one id to the next
    for bit in range(64):  # each of the 64 random bits is set about half the time
        assert 400 < sum(part >> bit & 1 for part in random_parts) < 600, bit
    url, _ = server
    served = [requests.post(f"{url}/create", json={}, headers={"X-API-Key": KEY}, timeout=30).json()["id"]
              for _ in range(20)]
    parts = [int(i[8:], 16) for i in served]
    assert len(set(parts)) == 20 and parts != sorted(parts) and parts != sorted(parts, reverse=True)


def names_under(folder: Path) -> list[str]:
    return [name for _, dirs, files in os.walk(folder) for name in dirs + files]


def test_uploaded_audio_never_lands_in_a_path_from_the_client(server, korean_wav):
    url, data_dir = server
    marker = f"voiceqna-pwned-{uuid.uuid4().hex}"
    conversation_id = requests.post(f"{url}/create", json={}, headers={"X-API-Key": KEY}, timeout=30).json()["id"]
    for filename in (f"../../../../../../../tmp/{marker}.wav", f"{data_dir}/{marker}.wav", f"{marker}.wav"):
        with open(korean_wav("고마워요"), "rb") as clip:
            response = requests.post(f"{url}/send/audio/{conversation_id}", headers={"X-API-Key": KEY},
                                     files={"audio": (filename, clip, "audio/wav")}, timeout=120)
        assert response.status_code == 200, response.text
        assert marker not in response.text
    for folder in (Path("/tmp"), data_dir.parent, PROJECT_ROOT):
        assert not [n for n in names_under(folder) if marker in n], folder
    assert set(names_under(data_dir)) <= {"conversations.sqlite3", "conversations.sqlite3-wal",
                                          "conversations.sqlite3-shm"}


def test_websockets_need_the_key_too(settings):
    """The key guards every kind of connection, not only HTTP requests: a WebSocket route (one a
    later version or a mounted app may add) is refused without the key and opens with it."""
    locked = replace(settings, api_key=KEY)
    api = create_api(SQLiteStore(settings.sqlite_path), locked)  # the store alone is enough: no turn runs

    @api.websocket("/echo")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    client = TestClient(api)
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        with pytest.raises(WebSocketDenialResponse) as refused:  # an HTTP 401 instead of the handshake
            with client.websocket_connect("/echo", headers=headers) as socket:
                socket.send_text("hello")
                socket.receive_text()
        assert refused.value.status_code == 401 and refused.value.json()["type"] == "Unauthorized"
    with client.websocket_connect("/echo", headers={"X-API-Key": KEY}) as socket:
        socket.send_text("hello")
        assert socket.receive_text() == "hello"
