"""Bad input against one real server (`python app.py --api-only` on loopback, API_KEY set).

Every case must get a 4xx JSON error whose message says what is wrong, that leaks nothing
(no traceback, no server path, no key), that creates or changes no conversation (the GET and
the rows of the server's SQLite file, read-only, are the same before and after), and after
which the server is still healthy. The unusual-but-valid inputs (emoji, right-to-left text,
a byte order mark, decomposed Hangul) must be accepted and stored intact.

test_api.py has the first round of bad bodies; these are the cases it does not cover.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import pytest
import requests

from tests.live_server import KEYED_API_KEY, NEVER_SHOWN_OPENAI_KEY, store_rows
from voiceqna.config import PROJECT_ROOT

KEY = KEYED_API_KEY
OPENAI_KEY = NEVER_SHOWN_OPENAI_KEY
AUTH = {"X-API-Key": KEY}
SEED = {"messages": ["안녕하세요", "반가워요"], "roles": ["user", "assistant"], "audios": ["SGVsbG8=", ""]}


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path

    def rows(self) -> tuple[int, int]:
        """(conversations, messages) in the server's SQLite file, opened read-only."""
        return store_rows(self.data_dir)

    def conversation(self, conversation_id: str) -> list[dict]:
        response = requests.get(f"{self.url}/{conversation_id}", headers=AUTH, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/health", timeout=30).json() == {"status": "ok"}


@pytest.fixture(scope="module")
def server(keyed_api) -> Server:
    """The session's keyed server (tests/conftest.py): API_KEY set, offline chat, 2 MB, 30 s."""
    return Server(*keyed_api)


@pytest.fixture(scope="module")
def conversation(server) -> str:
    response = requests.post(f"{server.url}/create", json=SEED, headers=AUTH, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


# --- inputs that take some making ---


def wav_header(rate: int, frames: int, channels: int = 1) -> bytes:
    """A PCM WAV whose header says `rate` Hz and `channels` channels, with `frames` silent frames."""
    data = bytes(frames * channels * 2)
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * 2) & 0xFFFFFFFF, channels * 2, 16)
    return (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", len(data)) + data)


def png() -> bytes:
    """A real 1×1 PNG image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def ffmpeg(folder: Path, name: str, *args: str) -> bytes:
    path = folder / name
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args, str(path)], check=True)
    return path.read_bytes()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("bad-media")
    silence = ("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono")
    tone = ("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=2")
    return {
        "silence_10min_flac": ffmpeg(folder, "silence.flac", *silence, "-t", "600", "-c:a", "flac"),
        "silence_10min_wav": ffmpeg(folder, "silence.wav", *silence, "-t", "600"),
        "webm": ffmpeg(folder, "tone.webm", *tone, "-c:a", "libopus"),
        "video_only_mp4": ffmpeg(folder, "video.mp4", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=5",
                                 "-t", "1", "-pix_fmt", "yuv420p", "-an"),
    }


# --- the cases ---


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    """{id} is the test conversation's id."""
    status: int
    mentions: str
    """Words the error message must contain (case-insensitive)."""
    request: Callable[[dict[str, bytes]], dict] = field(default=lambda media: {})
    """requests keyword arguments, from the generated media."""
    auth: bool = True


def raw(body: bytes | str, content_type: str = "application/json") -> Callable[[dict], dict]:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return lambda media: {"data": data, "headers": {"Content-Type": content_type}}


def as_json(value) -> Callable[[dict], dict]:
    return lambda media: {"json": value}


def audio(data: Callable[[dict], bytes], content_type: str = "audio/wav") -> Callable[[dict], dict]:
    return lambda media: {"data": data(media), "headers": {"Content-Type": content_type}}


def upload(data: Callable[[dict], bytes], filename: str = "question.wav") -> Callable[[dict], dict]:
    return lambda media: {"files": {"audio": (filename, data(media), "application/octet-stream")}}


TEXT = "/send/text/{id}"
AUDIO = "/send/audio/{id}"
CASES = [
    # malformed JSON
    Case("json-truncated", "POST", TEXT, 400, "not valid JSON", raw('{"message": "안녕')),
    Case("json-trailing-garbage", "POST", "/create", 400, "not valid JSON", raw('{"messages": []} extra')),
    Case("json-invalid-utf8", "POST", TEXT, 400, "not UTF-8", raw(b'{"message": "\xff\xfe\xfa"}')),
    Case("json-nested-100k-deep", "POST", "/create", 400, "not valid JSON", raw("[" * 100_000 + "]" * 100_000)),
    Case("json-null", "POST", "/create", 400, "JSON object", raw("null")),
    Case("json-bare-string", "POST", TEXT, 400, "JSON object", raw('"안녕하세요"')),
    # wrong types, missing fields
    Case("messages-is-an-object", "POST", "/create", 422, "messages", as_json({"messages": {"0": "a"},
                                                                               "roles": ["user"]})),
    Case("roles-is-a-string", "POST", "/create", 422, "roles", as_json({"messages": ["a"], "roles": "user"})),
    Case("audio-is-a-number", "POST", "/create", 422, "audios.0", as_json({"messages": ["a"], "roles": ["user"],
                                                                          "audios": [123]})),
    Case("message-is-a-list", "POST", TEXT, 422, "message", as_json({"message": ["안녕"]})),
    Case("message-is-null", "POST", TEXT, 422, "message", as_json({"message": None})),
    Case("role-is-a-number", "POST", TEXT, 422, "role", as_json({"message": "안녕", "role": 1})),
    Case("message-missing", "POST", TEXT, 422, "message", as_json({"role": "user"})),
    Case("roles-missing", "POST", "/create", 400, "one role per message", as_json({"messages": ["안녕"]})),
    # huge strings
    Case("message-100k-chars", "POST", TEXT, 400, "over the limit of 2000", as_json({"message": "가" * 100_000})),
    Case("role-100k-chars", "POST", TEXT, 400, "unknown role", as_json({"message": "안녕", "role": "x" * 100_000})),
    Case("body-over-upload-limit", "POST", TEXT, 413, "MAX_UPLOAD_MB", as_json({"message": "a" * 3_000_000})),
    # broken base64
    Case("base64-padding-in-the-middle", "POST", "/create", 400, "audios[0] is not valid base64",
         as_json({"messages": ["a"], "roles": ["user"], "audios": ["SGVsbG8=A"]})),
    Case("base64-data-url", "POST", "/create", 400, "not valid base64",
         as_json({"messages": ["a"], "roles": ["user"], "audios": ["data:audio/wav;base64,UklGRg=="]})),
    Case("base64-hangul", "POST", "/create", 400, "not valid base64",
         as_json({"messages": ["a"], "roles": ["user"], "audios": ["가나다라"]})),
    Case("base64-url-safe-alphabet", "POST", "/create", 400, "not valid base64",
         as_json({"messages": ["a"], "roles": ["user"], "audios": ["-_-_"]})),
    # unicode that cannot be a message
    Case("message-with-nul", "POST", TEXT, 400, "NUL", as_json({"message": "안녕\u0000하세요"})),
    Case("message-lone-surrogate", "POST", TEXT, 400, "surrogate", raw('{"message": "안녕 \\ud800"}')),
    Case("create-lone-surrogate", "POST", "/create", 400, "surrogate",
         raw('{"messages": ["\\udfff"], "roles": ["user"]}')),
    Case("message-only-invisible", "POST", TEXT, 400, "empty", as_json({"message": "\u200b\u3000\u2060\ufeff"})),
    # not audio, with audio content types
    Case("png-as-audio-webm", "POST", AUDIO, 415, "no audio track", audio(lambda m: png(), "audio/webm")),
    Case("gzip-as-audio-ogg", "POST", AUDIO, 415, "decode",
         audio(lambda m: gzip.compress("안녕하세요 ".encode() * 500, mtime=0), "audio/ogg")),
    Case("video-without-sound", "POST", AUDIO, 415, "no audio track",
         upload(lambda m: m["video_only_mp4"], "clip.mp4")),
    # truncated and empty audio
    Case("wav-header-only", "POST", AUDIO, 400, "no sound samples", audio(lambda m: wav_header(16_000, 0))),
    Case("webm-truncated-in-its-header", "POST", AUDIO, 415, "decode",
         audio(lambda m: m["webm"][:40], "audio/webm")),
    Case("zero-byte-file-in-multipart", "POST", AUDIO, 400, "empty", upload(lambda m: b"")),
    # absurd formats
    Case("wav-at-1-hz", "POST", AUDIO, 415, "sample rate of 1 Hz", audio(lambda m: wav_header(1, 1000))),
    Case("wav-at-4-ghz", "POST", AUDIO, 415, "decode", audio(lambda m: wav_header(4_294_967_295, 16_000))),
    Case("wav-with-255-channels", "POST", AUDIO, 415, "decode", audio(lambda m: wav_header(16_000, 100, 255))),
    Case("silence-10-min-flac", "POST", AUDIO, 413, "MAX_AUDIO_S",
         upload(lambda m: m["silence_10min_flac"], "silence.flac")),
    Case("silence-10-min-wav", "POST", AUDIO, 413, "MAX_UPLOAD_MB", audio(lambda m: m["silence_10min_wav"])),
    # ids with path characters or SQL
    Case("id-path-traversal", "GET", "/" + quote("../../etc/passwd", safe=""), 404, "no route"),
    Case("id-backslash-path", "GET", "/" + quote("..\\..\\windows\\win.ini", safe=""), 404, "conversation"),
    Case("id-sql-or-true", "GET", "/" + quote("' OR '1'='1", safe=""), 404, "conversation"),
    Case("id-sql-drop-table", "POST", "/send/text/" + quote("1; DROP TABLE conversations;--", safe=""), 404,
         "conversation", as_json({"message": "안녕"})),
    Case("id-sql-after-a-real-id", "POST", "/reset/{id}" + quote("' OR 1=1 --", safe=""), 404, "conversation"),
    Case("id-fullwidth-digits", "GET", "/" + quote("０" * 24, safe=""), 404, "conversation"),
    Case("id-with-nul", "GET", "/{id}%00", 404, "conversation"),
    Case("id-10k-chars", "POST", "/reset/" + "a" * 10_000, 404, "conversation"),
    # wrong methods
    Case("put-create", "PUT", "/create", 405, "not allowed", as_json({})),
    Case("delete-conversation", "DELETE", "/{id}", 405, "not allowed"),
    Case("get-send-audio", "GET", AUDIO, 405, "not allowed"),
    Case("patch-reset", "PATCH", "/reset/{id}", 405, "not allowed"),
    Case("post-to-a-conversation", "POST", "/{id}", 405, "not allowed", as_json({"message": "안녕"})),
    # the key
    Case("no-api-key", "POST", TEXT, 401, "API_KEY", as_json({"message": "안녕"}), auth=False),
    Case("api-key-in-the-query-string", "GET", "/{id}?api_key=" + KEY, 401, "API_KEY", auth=False),
]


def assert_clear_error(response: requests.Response, case: Case, server: Server) -> None:
    assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "status", "type"} and body["status"] == case.status
    assert 15 < len(body["error"]) < 400, body["error"]  # says something, and echoes no huge input
    assert case.mentions.lower() in body["error"].lower(), body["error"]
    for secret in ("Traceback", 'File "', "site-packages", str(PROJECT_ROOT), str(server.data_dir.parent),
                   KEY, OPENAI_KEY):
        assert secret not in response.text, f"the error reveals {secret!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_clear_4xx_and_changes_nothing(server, conversation, media, case):
    before, rows = server.conversation(conversation), server.rows()
    kwargs = case.request(media)
    if case.auth:  # the key goes on top of the case's own headers
        kwargs = {**kwargs, "headers": {**kwargs.get("headers", {}), **AUTH}}
    response = requests.request(case.method, server.url + case.path.replace("{id}", conversation),
                                timeout=120, **kwargs)
    assert_clear_error(response, case, server)
    assert server.conversation(conversation) == before
    assert server.rows() == rows
    assert server.healthy()


# --- unusual but valid: accepted and stored intact ---


@pytest.mark.parametrize("sent, stored", [
    ("🎙️ 안녕하세요 👍🏽 👨‍👩‍👧 🇰🇷", "🎙️ 안녕하세요 👍🏽 👨‍👩‍👧 🇰🇷"),
    ("مرحبا بالعالم שלום עולם \u202eabc\u202c 한국어", "مرحبا بالعالم שלום עולם \u202eabc\u202c 한국어"),
    ("\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165", "한국어"),  # decomposed Hangul (NFD) is stored as NFC
    ("𝕳𝖊𝖑𝖑𝖔 \U0001F600 漢字 かな", "𝕳𝖊𝖑𝖑𝖔 \U0001F600 漢字 かな"),
], ids=["emoji-zwj-flags", "rtl-arabic-hebrew-override", "nfd-hangul", "astral-plane-cjk"])
def test_unusual_valid_text_is_answered_and_stored_intact(server, sent, stored):
    created = requests.post(f"{server.url}/create", json={}, headers=AUTH, timeout=30).json()["id"]
    rows = server.rows()
    response = requests.post(f"{server.url}/send/text/{created}", json={"message": sent}, headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["transcript"] == stored
    user, assistant = server.conversation(created)
    assert (user["role"], user["message"]) == ("user", stored)
    assert assistant["role"] == "assistant" and assistant["message"] == response.json()["text"]
    assert server.rows() == (rows[0], rows[1] + 2)


def test_json_with_a_byte_order_mark_is_accepted(server):
    body = "\ufeff" + json.dumps({"messages": ["안녕"], "roles": ["user"]}, ensure_ascii=False)
    response = requests.post(f"{server.url}/create", data=body.encode("utf-8"),
                             headers={"Content-Type": "application/json", **AUTH}, timeout=30)
    assert response.status_code == 201, response.text
    assert server.conversation(response.json()["id"]) == [{"message": "안녕", "role": "user", "audio": ""}]
