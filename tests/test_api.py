"""The REST API over HTTP against a real server process (python app.py --api-only on loopback):
the seed document's examples byte for byte, what real clients send, and every bad input."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import urllib.error
import urllib.request
from urllib.parse import quote, urlsplit

import numpy as np
import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.live_server import API_KEY, CORS_ORIGIN
from voiceqna.api import create_api
from voiceqna.audio import encode_wav
from voiceqna.compose import build_service
from voiceqna.evaluation import metrics

SEED_CREATE = {
    "messages": ["Hello", "How are you?"],
    "roles": ["user", "assistant"],
    "audios": ["SGVsbG8=", "SG93IGFyZSB5b3U/"],
}
SEED_CONVERSATION = [
    {"message": "Hello", "role": "user", "audio": "SGVsbG8="},
    {"message": "How are you?", "role": "assistant", "audio": "SG93IGFyZSB5b3U/"},
]
CLIP = "sub100100a00000.wav"  # 2.7 s: "저 식당 음식이 정말 맛있나 봐요."
UNKNOWN_ID = "0123456789abcdef01234567"


# --- helpers ---


def create(url: str, body=None, **kwargs) -> str:
    response = requests.post(f"{url}/create", json={} if body is None else body, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def conversation(url: str, conversation_id: str, **kwargs) -> list[dict]:
    response = requests.get(f"{url}/{conversation_id}", **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: requests.Response, status: int, mentions: str = "") -> dict:
    """A JSON error with a message (no stack trace), the right status and nothing else."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "status", "type"} and body["status"] == status
    assert len(body["error"]) > 10 and "Traceback" not in response.text and 'File "' not in response.text
    assert mentions.lower() in body["error"].lower(), body["error"]
    return body


def assert_wav(text: str) -> bytes:
    data = base64.b64decode(text, validate=True)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) > 1000
    return data


def cer(reference: str, hypothesis: str) -> float:
    return metrics.cer([reference], [hypothesis])


def assert_answered(response: requests.Response, reference: str) -> dict:
    """200 with the seed's fields, the answer spoken as WAV, and a transcript close to what was said."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["text"], str) and body["text"]
    assert_wav(body["audio"])
    assert cer(reference, body["transcript"]) <= 0.25, body["transcript"]
    assert body["stored"] is True and body["audio_error"] == ""
    assert body["timings_ms"]["asr"] > 0 and body["timings_ms"]["total"] >= body["timings_ms"]["asr"]
    return body


@pytest.fixture(scope="module")
def clip(read_speech):
    (found,) = [c for c in read_speech if c.path.name == CLIP]
    return found


@pytest.fixture(scope="module")
def encoded(clip, tmp_path_factory):
    """The clip in the other formats browsers and phones record (made with ffmpeg)."""
    folder = tmp_path_factory.mktemp("formats")
    codecs = {"webm": "libopus", "ogg": "libvorbis", "mp3": "libmp3lame", "m4a": "aac", "flac": "flac"}
    paths = {}
    for ext, codec in codecs.items():
        paths[ext] = folder / f"clip.{ext}"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip.path), "-c:a", codec,
                        str(paths[ext])], check=True)
    return paths


# --- the seed document's examples ---


def test_create_seed_example_returns_201_and_an_objectid(api_url):
    response = requests.post(f"{api_url}/create", json=SEED_CREATE)
    assert response.status_code == 201
    assert list(response.json()) == ["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", response.json()["id"])


def test_get_returns_the_seed_messages_with_client_audio_unchanged(api_url):
    conversation_id = create(api_url, SEED_CREATE)
    response = requests.get(f"{api_url}/{conversation_id}")
    assert response.status_code == 200
    assert response.json() == SEED_CONVERSATION


@pytest.mark.parametrize("body", [b"{}", b"", b"%7B%7D", quote(json.dumps(SEED_CREATE)).encode()],
                         ids=["unity-jsonutility-empty", "no-body", "unity-url-encoded-empty",
                              "unity-url-encoded-example"])
def test_create_accepts_what_unity_sends(api_url, body):
    response = requests.post(f"{api_url}/create", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    expected = SEED_CONVERSATION if len(body) > 10 else []
    assert conversation(api_url, response.json()["id"]) == expected


def test_send_text_seed_example_answers_and_keeps_the_turn(api_url):
    conversation_id = create(api_url, SEED_CREATE)
    response = requests.post(f"{api_url}/send/text/{conversation_id}",
                             json={"message": "What's your name?", "role": "user"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["text"], str) and body["text"]
    assert_wav(body["audio"])
    assert body["transcript"] == "What's your name?" and body["stored"] is True
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION + [
        {"message": "What's your name?", "role": "user", "audio": ""},
        {"message": body["text"], "role": "assistant", "audio": body["audio"]},
    ]


def test_send_text_in_korean_gets_the_knowledge_base_answer(api_url):
    conversation_id = create(api_url)
    response = requests.post(f"{api_url}/send/text/{conversation_id}", json={"message": "이름이 뭐예요?"})
    assert response.status_code == 200, response.text
    assert "챗봇" in response.json()["text"]


def test_send_audio_seed_multipart_example_transcribes_and_stores(api_url, clip):
    conversation_id = create(api_url)
    with open(clip.path, "rb") as handle:
        response = requests.post(f"{api_url}/send/audio/{conversation_id}",
                                 files={"audio": ("audio.wav", handle, "audio/wav")})
    body = assert_answered(response, clip.text)
    user, assistant = conversation(api_url, conversation_id)
    assert (user["role"], user["message"]) == ("user", body["transcript"])
    assert_wav(user["audio"])
    assert assistant == {"message": body["text"], "role": "assistant", "audio": body["audio"]}


def test_send_audio_unity_raw_wav_with_boundaryless_multipart_header(api_url, clip):
    """The seed's C# sample: Content-Type multipart/form-data, the WAV bytes as the whole body."""
    conversation_id = create(api_url)
    response = requests.post(f"{api_url}/send/audio/{conversation_id}", data=clip.path.read_bytes(),
                             headers={"Content-Type": "multipart/form-data"})
    assert_answered(response, clip.text)
    assert len(conversation(api_url, conversation_id)) == 2


@pytest.mark.parametrize("content_type", ["audio/wav", "application/octet-stream", None])
def test_send_audio_accepts_raw_bodies(api_url, clip, content_type):
    conversation_id = create(api_url)
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.post(f"{api_url}/send/audio/{conversation_id}", data=clip.path.read_bytes(), headers=headers)
    assert_answered(response, clip.text)


@pytest.mark.parametrize("ext", ["webm", "ogg", "mp3", "m4a", "flac"])
def test_send_audio_accepts_recorded_formats_in_multipart(api_url, clip, encoded, ext):
    conversation_id = create(api_url)
    with open(encoded[ext], "rb") as handle:
        response = requests.post(f"{api_url}/send/audio/{conversation_id}",
                                 files={"audio": (f"clip.{ext}", handle, "application/octet-stream")})
    assert_answered(response, clip.text)


def test_reset_seed_example_empties_the_conversation_and_keeps_the_id(api_url):
    conversation_id = create(api_url, SEED_CREATE)
    response = requests.post(f"{api_url}/reset/{conversation_id}")
    assert response.status_code == 200
    assert response.json() == {"messages": [], "roles": [], "audio": []}
    assert conversation(api_url, conversation_id) == []
    follow_up = requests.post(f"{api_url}/send/text/{conversation_id}", json={"message": "안녕", "role": "user"})
    assert follow_up.status_code == 200 and len(conversation(api_url, conversation_id)) == 2


# --- bad input: a clear JSON error, the right status, nothing half-written ---


@pytest.mark.parametrize("body, status, mentions", [
    ({"messages": ["a", "b"], "roles": ["user"]}, 400, "one role per message"),
    ({"messages": ["a"], "roles": ["user"], "audios": ["", ""]}, 400, "one audio per message"),
    ({"messages": [1], "roles": ["user"]}, 422, "messages.0"),
    ({"messages": "hello", "roles": ["user"]}, 422, "messages"),
    ({"messages": ["a"], "roles": [None]}, 422, "roles.0"),
    ({"messages": ["a"], "roles": ["user"], "audios": ["not base64!"]}, 400, "audios[0] is not valid base64"),
    ({"messages": ["a"], "roles": ["robot"]}, 400, "unknown role"),
    ({"messages": [""], "roles": ["user"]}, 400, "empty"),
    (["Hello"], 400, "JSON object"),
])
def test_create_rejects_bad_bodies(api_url, body, status, mentions):
    assert_error(requests.post(f"{api_url}/create", json=body), status, mentions)


def test_create_rejects_a_body_that_is_not_json(api_url):
    response = requests.post(f"{api_url}/create", data=b"messages=Hello", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "not valid JSON")


@pytest.mark.parametrize("body, status, mentions", [
    ({}, 422, "message"),  # what Unity's JsonUtility makes of the seed's Dictionary
    ({"message": 5, "role": "user"}, 422, "message"),
    ({"message": "   ", "role": "user"}, 400, "empty"),
    ({"message": "가" * 2001, "role": "user"}, 400, "2000"),
    ({"message": "안녕", "role": "robot"}, 400, "unknown role"),
])
def test_send_text_rejects_bad_bodies_and_keeps_the_conversation(api_url, body, status, mentions):
    conversation_id = create(api_url, SEED_CREATE)
    assert_error(requests.post(f"{api_url}/send/text/{conversation_id}", json=body), status, mentions)
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION


@pytest.mark.parametrize("conversation_id", [UNKNOWN_ID, "nope", "0123456789ABCDEF01234567", "%2E%2E"])
@pytest.mark.parametrize("method, route", [("GET", ""), ("POST", "send/text/"), ("POST", "send/audio/"),
                                           ("POST", "reset/")])
def test_unknown_or_malformed_id_is_404(api_url, method, route, conversation_id):
    """No recording needed: an unknown id is refused before the audio is decoded (a second of tone will do)."""
    kwargs = {"json": {"message": "안녕"}} if "text" in route else {}
    if "audio" in route:
        tone = encode_wav((0.3 * np.sin(np.arange(16_000) / 16_000 * 2 * np.pi * 220)).astype(np.float32))
        kwargs = {"data": tone, "headers": {"Content-Type": "audio/wav"}}
    assert_error(requests.request(method, f"{api_url}/{route}{conversation_id}", **kwargs), 404, "conversation")


def raw_request(url: str, head: str, body: bytes) -> tuple[int, dict]:
    """Send a request by hand (headers + `body`, however much the headers announce) and read the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode() + body)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        header, _, content = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", header, re.I).group(1))
        while len(content) < length:
            content += sock.recv(65536)
    return int(header.split()[1]), json.loads(content)


def test_announced_gigabyte_upload_is_refused_before_reading_it(api_url):
    conversation_id = create(api_url, SEED_CREATE)
    head = (f"POST /send/audio/{conversation_id} HTTP/1.1\r\nHost: test\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: {1 << 30}\r\n\r\n")
    status, body = raw_request(api_url, head, b"RIFF" + bytes(4096))  # the other 1 GB never comes
    assert status == 413 and body["type"] == "AudioTooLarge" and "MAX_UPLOAD_MB" in body["error"]
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION


def chunks(total: int, size: int = 64 * 1024):
    for _ in range(total // size):
        yield bytes(size)


@pytest.mark.parametrize("how", ["content-length", "chunked", "multipart", "create-json"])
def test_upload_over_the_limit_is_413(api_url, how):
    conversation_id = create(api_url, SEED_CREATE)
    over = 2 * 1024 * 1024  # the server's MAX_UPLOAD_MB is 1
    target = f"{api_url}/send/audio/{conversation_id}"
    if how == "content-length":
        response = requests.post(target, data=bytes(over), headers={"Content-Type": "audio/wav"})
    elif how == "chunked":  # no Content-Length: counted while it streams in
        response = requests.post(target, data=chunks(over), headers={"Content-Type": "audio/wav"})
    elif how == "multipart":
        response = requests.post(target, files={"audio": ("big.wav", bytes(over), "audio/wav")})
    else:
        big = base64.b64encode(bytes(over)).decode()
        response = requests.post(f"{api_url}/create", json={"messages": ["a"], "roles": ["user"], "audios": [big]})
    assert_error(response, 413, "MAX_UPLOAD_MB")
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION


@pytest.mark.parametrize("kwargs, status, mentions", [
    ({"data": b"just text", "headers": {"Content-Type": "text/plain"}}, 415, "not audio"),
    ({"json": {"audio": "UklGRg=="}}, 415, "multipart/form-data field 'audio'"),
    ({"data": b"this is not a WAV file at all" * 10, "headers": {"Content-Type": "audio/wav"}}, 415, "decode"),
    ({"files": {"audio": ("notes.txt", b"just some text" * 10, "text/plain")}}, 415, "decode"),
    ({"data": b"", "headers": {"Content-Type": "audio/wav"}}, 400, "empty"),
    ({"files": {"audio": (None, "some text")}}, 415, "not a file"),
    ({"files": {"sound": ("a.wav", b"RIFF", "audio/wav"), "other": ("b.wav", b"RIFF", "audio/wav")}}, 400,
     "no 'audio' field"),
    ({"data": b"RIFF....WAVEfmt ", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}}, 400,
     "multipart body could not be read"),
])
def test_not_audio_is_rejected_and_stores_nothing(api_url, kwargs, status, mentions):
    conversation_id = create(api_url, SEED_CREATE)
    assert_error(requests.post(f"{api_url}/send/audio/{conversation_id}", **kwargs), status, mentions)
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION


def test_audio_longer_than_max_audio_s_is_413(locked_api_url, clip):
    key = {"X-API-Key": API_KEY}
    conversation_id = create(locked_api_url, headers=key)
    response = requests.post(f"{locked_api_url}/send/audio/{conversation_id}", data=clip.path.read_bytes(),
                             headers={"Content-Type": "audio/wav", **key})  # 2.7 s, the limit is 2 s
    assert_error(response, 413, "longer than the limit")
    assert conversation(locked_api_url, conversation_id, headers=key) == []


def test_chat_engine_down_is_503_and_stores_nothing(locked_api_url):
    key = {"X-API-Key": API_KEY}
    conversation_id = create(locked_api_url, SEED_CREATE, headers=key)
    response = requests.post(f"{locked_api_url}/send/text/{conversation_id}", json={"message": "안녕"}, headers=key)
    assert_error(response, 503, "chat engine")
    assert conversation(locked_api_url, conversation_id, headers=key) == SEED_CONVERSATION


@pytest.mark.parametrize("method, path, status", [("GET", "/send/text/x", 405), ("DELETE", "/create", 405),
                                                  ("GET", "/", 404), ("GET", "/a/b/c", 404)])
def test_unknown_routes_and_methods_answer_json(api_url, method, path, status):
    assert_error(requests.request(method, f"{api_url}{path}"), status, "/docs")


class BrokenFakeService:
    """A fake whose every call fails the way a bug would (there is no real way to make one)."""

    def create(self, messages=()):
        raise RuntimeError("secret internal detail /etc/passwd")


def test_unexpected_error_is_a_generic_500_without_details_fake_service(settings):
    client = TestClient(create_api(BrokenFakeService(), settings), raise_server_exceptions=False)
    response = client.post("/create", json={})
    assert response.status_code == 500
    assert response.json()["type"] == "InternalError"
    assert "secret" not in response.text and "RuntimeError" not in response.text


# --- auth, CORS, docs, info ---


def test_api_key_is_required_when_set(locked_api_url):
    url = locked_api_url
    body = assert_error(requests.post(f"{url}/create", json={}), 401, "X-API-Key")
    assert body["type"] == "Unauthorized"
    assert_error(requests.post(f"{url}/create", json={}, headers={"X-API-Key": "wrong"}), 401)
    assert_error(requests.post(f"{url}/create", json={}, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(requests.post(f"{url}/create", json={}, headers={"Authorization": API_KEY}), 401)
    conversation_id = create(url, SEED_CREATE, headers={"Authorization": f"Bearer {API_KEY}"})
    create(url, headers={"X-API-Key": API_KEY})
    assert_error(requests.get(f"{url}/{conversation_id}"), 401)
    assert_error(requests.post(f"{url}/reset/{conversation_id}"), 401)
    assert conversation(url, conversation_id, headers={"X-API-Key": API_KEY}) == SEED_CONVERSATION
    assert requests.get(f"{url}/health").status_code == 200


def test_cors_allows_only_the_configured_origin(locked_api_url, api_url):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = requests.options(f"{locked_api_url}/create", headers={"Origin": CORS_ORIGIN, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == CORS_ORIGIN
    refused = requests.options(f"{locked_api_url}/create", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers
    open_server = requests.get(f"{api_url}/health", headers={"Origin": CORS_ORIGIN})
    assert "access-control-allow-origin" not in open_server.headers


def test_docs_and_openapi_describe_the_seed_routes(api_url):
    docs = requests.get(f"{api_url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = requests.get(f"{api_url}/openapi.json").json()["paths"]
    for path in ("/create", "/{conversation_id}", "/send/text/{conversation_id}",
                 "/send/audio/{conversation_id}", "/reset/{conversation_id}", "/info", "/health"):
        assert path in paths
    assert "multipart/form-data" in paths["/send/audio/{conversation_id}"]["post"]["requestBody"]["content"]


def test_info_describes_the_engines_and_limits(api_url):
    info = requests.get(f"{api_url}/info").json()
    assert "Whisper" in info["recognizer"] and info["chat"] == "offline knowledge base"
    assert info["tts"].startswith("espeak-ng") and info["store"].startswith("SQLite")
    assert info["limits"]["max_upload_bytes"] == 1024 * 1024


def test_routes_work_mounted_under_api_as_in_the_page(settings, fake_recognizer):
    root = FastAPI()
    root.mount("/api", create_api(build_service(settings, fake_recognizer), settings))
    client = TestClient(root)
    created = client.post("/api/create", json=SEED_CREATE)
    assert created.status_code == 201
    assert client.get(f"/api/{created.json()['id']}").json() == SEED_CONVERSATION
    assert client.get("/api/docs").status_code == 200 and "/api/openapi.json" in client.get("/api/docs").text
    assert "/create" in client.get("/api/openapi.json").json()["paths"]



@pytest.mark.parametrize("method, path, content_type, status", [
    ("POST", "/send/audio/{id}", "text/" + "x" * 3000, 415),
    ("GET", "/no-such-route/" + "y" * 3000, None, 404),
    ("GET", "/send/text/" + "z" * 3000, None, 405),
])
def test_errors_echo_at_most_40_characters_of_client_input(api_url, method, path, content_type, status):
    """A Content-Type or a path the client made up is quoted in the error, cut like every other
    echo of client input (voiceqna.errors.shown: 40 characters)."""
    conversation_id = create(api_url, SEED_CREATE)
    headers = {"Content-Type": content_type} if content_type else {}
    response = requests.request(method, f"{api_url}{path.replace('{id}', conversation_id)}", data=b"RIFF",
                                headers=headers)
    body = assert_error(response, status)
    for letter in "xyz":
        assert letter * 41 not in body["error"], body["error"]
    assert len(body["error"]) < 400


@pytest.mark.parametrize("route, content_type", [("send/audio/{id}", "audio/wav"), ("create", "application/json"),
                                                 ("send/text/{id}", "application/json")])
def test_a_client_that_writes_its_whole_body_first_gets_the_413_json(api_url, route, content_type):
    """Python's urllib (like many simple clients) writes the whole body before it reads a byte of
    the answer: the server must read past an over-limit body (up to a bound) before answering,
    or the client sees a connection reset instead of the 413."""
    conversation_id = create(api_url, SEED_CREATE)
    request = urllib.request.Request(f"{api_url}/{route.replace('{id}', conversation_id)}",
                                     data=bytes(12 * 1024 * 1024), headers={"Content-Type": content_type},
                                     method="POST")  # 12 MB; the server's MAX_UPLOAD_MB is 1
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413
    body = json.loads(refused.value.read())
    assert body["type"] == "AudioTooLarge" and "MAX_UPLOAD_MB" in body["error"]
    assert conversation(api_url, conversation_id) == SEED_CONVERSATION


def test_json_and_base64_of_large_bodies_run_off_the_event_loop(settings, fake_recognizer, monkeypatch):
    """Parsing a 25 MB /create body, decoding its base64, and encoding a long conversation for
    GET take long enough to stall every other request (/health included) if they ran on the
    event loop: each must run on a worker thread (where no event loop runs)."""
    import asyncio

    from voiceqna.api import bodies, schemas

    on_loop: list[str] = []

    def watched(name, function):
        def call(*args, **kwargs):
            try:
                asyncio.get_running_loop()
                on_loop.append(name)
            except RuntimeError:  # a worker thread: no loop here
                pass
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(bodies.json, "loads", watched("json.loads", bodies.json.loads))
    monkeypatch.setattr(schemas.binascii, "a2b_base64", watched("a2b_base64", schemas.binascii.a2b_base64))
    monkeypatch.setattr(schemas.binascii, "b2a_base64", watched("b2a_base64", schemas.binascii.b2a_base64))
    client = TestClient(create_api(build_service(settings, fake_recognizer), settings))
    created = client.post("/create", json=SEED_CREATE)
    assert created.status_code == 201
    conversation_id = created.json()["id"]
    assert client.get(f"/{conversation_id}").json() == SEED_CONVERSATION
    sent = client.post(f"/send/text/{conversation_id}", json={"message": "안녕"})
    assert sent.status_code == 200 and sent.json()["audio"]
    streamed = client.post(f"/send/text/{conversation_id}/stream", json={"message": "안녕"})
    assert streamed.status_code == 200 and "event: audio" in streamed.text and "event: done" in streamed.text
    assert on_loop == []


def test_get_bodies_are_byte_for_byte_what_fastapi_made():
    """GET /<id> is assembled by hand (see schemas.messages_json): the same bytes as FastAPI's own
    serialisation of list[MessageOut], for text that JSON must escape and audio of every size."""
    import os

    from pydantic import TypeAdapter

    from voiceqna.api.schemas import B64_STEP, MessageOut, messages_json
    from voiceqna.ports import Message

    texts = ['안녕 "따옴표" \\ 역슬래시', "줄\n바꿈\t탭 \x01\x1f\x7f", "\u2028\u2029 😀 𝕳 </script>", "", "a'b"]
    sizes = [0, 1, 2, 3, B64_STEP - 1, B64_STEP, B64_STEP + 1, 3 * B64_STEP + 2]
    messages = [Message(("user", "assistant")[i % 2], texts[i % len(texts)], os.urandom(size))
                for i, size in enumerate(sizes)]
    fastapi = TypeAdapter(list[MessageOut]).dump_json(
        [MessageOut(message=m.text, role=m.role, audio=base64.b64encode(m.audio).decode()) for m in messages])
    assert messages_json(messages) == fastapi
    assert messages_json([]) == b"[]"
