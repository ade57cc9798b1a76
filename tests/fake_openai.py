"""A FAKE OpenAI-compatible server on loopback, for tests: OpenAI's API cannot be reached here.

It records every request and answers /v1/chat/completions (whole, or streamed as Server-Sent
Events when asked with "stream": true), /v1/audio/speech (a WAV tone) and
/v1/audio/transcriptions (a multipart upload, recorded as its form fields and the file's bytes
under "file"; the answer is `transcript`) the way the real API does (shape only). `fail_with`
makes it answer an HTTP error, `delay_s` makes it slow; `only` limits both to the paths ending
with one of its suffixes (e.g. ("/audio/speech",)); `hold` (an Event) keeps every targeted
request waiting until it is set (a test decides when the engine answers). `answer_for`, when
set, makes each chat request's answer from its JSON body instead of `answer`. A streamed answer
comes in tokens of TOKEN_CHARS characters, the first after `first_token_s`, then
`tokens_per_s` of them a second (0: all at once); `fail_after_tokens` breaks the stream off.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import MISSING, dataclass, field, fields
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

import numpy as np

from voiceqna.audio import encode_wav


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that timed out (as some tests make it) has closed its socket: expected, not news.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _form(content_type: str, body: bytes) -> dict:
    """A multipart/form-data body as {field: text}, a file field as its bytes (and "filename")."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if part.get_filename() is None:
            fields[name] = data.decode()
        else:
            fields[name], fields["filename"] = data, part.get_filename()
    return fields


TOKEN_CHARS = 2
"""Characters per streamed token (Korean LLM tokens are one or two syllables)."""


@dataclass
class FakeOpenAI:
    answer: str = "서울이에요."
    transcript: str = "한국의 수도는 어디예요?"
    fail_with: int = 0
    delay_s: float = 0.0
    only: tuple[str, ...] = ()
    first_token_s: float = 0.0
    tokens_per_s: float = 0.0
    fail_after_tokens: int = -1
    hold: threading.Event | None = None
    answer_for: Optional[Callable[[dict], str]] = None
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    last_tokens_at: list[float] = field(default_factory=list)
    """time.monotonic() at which each streamed answer's last token was sent."""

    def reset(self, **behaviour) -> "FakeOpenAI":
        """Back to the defaults (the requests seen forgotten), then `behaviour` (e.g. answer=...):
        for a fake shared by several test modules (tests/conftest.py `openai_fake`)."""
        for name, value in {**{f.name: f.default for f in fields(self) if f.default is not MISSING},
                            "requests": [], "headers": [], "last_tokens_at": [], **behaviour}.items():
            setattr(self, name, value)
        return self

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("Content-Type", "")
                body = _form(kind, raw) if kind.startswith("multipart/form-data") else json.loads(raw or b"{}")
                fake.requests.append({"path": self.path, **body})
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                targeted = not fake.only or self.path.endswith(fake.only)
                time.sleep(fake.delay_s if targeted else 0.0)
                if fake.hold is not None and targeted:
                    fake.hold.wait(timeout=120)
                if fake.fail_with and targeted:
                    return self._send(fake.fail_with, "application/json",
                                      json.dumps({"error": {"message": "fake failure"}}).encode())
                answer = fake.answer_for(body) if fake.answer_for and self.path.endswith("/chat/completions") else fake.answer
                if self.path.endswith("/chat/completions") and body.get("stream"):
                    return self._stream(body["model"], answer)
                if self.path.endswith("/chat/completions"):
                    payload = {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": answer}}],
                    }
                    return self._send(200, "application/json", json.dumps(payload).encode())
                if self.path.endswith("/audio/transcriptions"):
                    if body.get("response_format") == "text":
                        return self._send(200, "text/plain; charset=utf-8", fake.transcript.encode())
                    return self._send(200, "application/json",
                                      json.dumps({"text": fake.transcript}, ensure_ascii=False).encode())
                if self.path.endswith("/audio/speech"):
                    tone = 0.3 * np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 220)
                    return self._send(200, "audio/wav", encode_wav(tone.astype(np.float32), 24_000))
                self._send(404, "application/json", b'{"error": {"message": "not found"}}')

            def _stream(self, model: str, answer: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                time.sleep(fake.first_token_s)
                tokens = [answer[i:i + TOKEN_CHARS] for i in range(0, len(answer), TOKEN_CHARS)]
                for number, token in enumerate(tokens):
                    if number == fake.fail_after_tokens:
                        return  # the connection drops mid-answer
                    if number and fake.tokens_per_s:
                        time.sleep(1.0 / fake.tokens_per_s)
                    self._event({"role": "assistant", "content": token} if number == 0 else {"content": token}, model)
                fake.last_tokens_at.append(time.monotonic())
                self._event({}, model, finish="stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, delta: dict, model: str, finish: str | None = None) -> None:
                chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
                self.wfile.flush()

            def _send(self, status: int, kind: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
