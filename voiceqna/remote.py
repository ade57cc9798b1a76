"""RemoteService: the service's interface over the REST API (voiceqna/api), for the page in
remote mode (API_URL) — the seed's two-part deployment, the page here and the engines elsewhere.

Same methods, same dataclasses, same exceptions: an HTTP error status becomes the
voiceqna.errors type the server named (else the type its status stands for), and a server
that cannot be reached is EngineUnavailable. Streamed turns read the server's Server-Sent
Events. One httpx client, which is safe to share between the page's threads.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Iterator, Optional, Sequence
from urllib.parse import quote

import httpx

from voiceqna import sse
from voiceqna.errors import BY_NAME, EngineUnavailable, Unauthorized, VoiceQnAError, from_status
from voiceqna.ports import (
    Done,
    EngineInfo,
    Failed,
    Heard,
    Message,
    Sentence,
    SentenceAudio,
    Timings,
    TurnEvent,
    TurnResult,
    result_of,
)
from voiceqna.spoken import spoken

logger = logging.getLogger(__name__)

NOT_THIS_API = ("The REST API's answer was not understood: check that API_URL points at this app's API "
                "(http://host:5000 for `app.py --api-only`, http://host:7860/api beside the page).")
"""Errors here never name the address (API_URL is the operator's, and they reach the page)."""


class RemoteService:
    """Calls the REST API at `base_url` (e.g. http://gpu-box:5000, or http://host:7860/api)."""

    cancellable_turns = False
    """A turn started over REST is always stored: hands-free does not start turns early here."""

    def __init__(self, base_url: str, api_key: str = "", timeout_s: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    @property
    def info(self) -> EngineInfo:
        data = self._call("GET", "info")
        with _understood():
            return EngineInfo(data["recognizer"], data["chat"], data["tts"], data["store"])

    def create(self, messages: Sequence[Message] = ()) -> str:
        body = {
            "messages": [m.text for m in messages],
            "roles": [m.role for m in messages],
            "audios": [base64.b64encode(m.audio).decode("ascii") for m in messages],
        }
        data = self._call("POST", "create", json=body)
        with _understood():
            return str(data["id"])

    def get(self, conversation_id: str) -> list[Message]:
        data = self._call("GET", _segment(conversation_id))
        with _understood():
            return [Message(role=m["role"], text=m["message"], audio=_unb64(m["audio"])) for m in data]

    def reset(self, conversation_id: str) -> None:
        self._call("POST", f"reset/{_segment(conversation_id)}")

    def send_text(self, conversation_id: str, text: str, role: str = "user", *,
                  idempotency_key: str = "") -> TurnResult:
        data = self._call("POST", f"send/text/{_segment(conversation_id)}", json={"message": text, "role": role},
                          headers=_key_header(idempotency_key))
        with _understood():
            return _turn(conversation_id, data)

    def send_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "") -> TurnResult:
        answer = self._call("POST", f"send/audio/{_segment(conversation_id)}", files=_upload(data),
                            headers=_key_header(idempotency_key))
        with _understood():
            return _turn(conversation_id, answer)

    def transcribe(self, data: bytes) -> str:
        return self._call("POST", "transcribe", files=_upload(data))["text"]

    def stream_text(self, conversation_id: str, text: str, role: str = "user", *,
                    idempotency_key: str = "", speak: bool = True) -> "RemoteTurnStream":
        """`speak=False`: the events a text-only turn has (the server's SSE route still speaks it)."""
        return self._stream(conversation_id, f"send/text/{_segment(conversation_id)}/stream", speak,
                            json={"message": text, "role": role}, headers=_key_header(idempotency_key))

    def stream_audio(self, conversation_id: str, data: bytes, *, idempotency_key: str = "",
                     hold_s: float = 0.0, speak: bool = True) -> "RemoteTurnStream":
        """`hold_s` is not available over REST: the server stores the turn once it is written."""
        return self._stream(conversation_id, f"send/audio/{_segment(conversation_id)}/stream", speak,
                            files=_upload(data), headers=_key_header(idempotency_key))

    def close(self) -> None:
        self.client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unreachable(method, path, exc) from None
        return self._json(response)

    def _stream(self, conversation_id: str, path: str, speak: bool, **kwargs: Any) -> "RemoteTurnStream":
        """The request is sent and its status read here, so errors before the stream starts
        (unknown id, bad input, overload) raise at once, as in process."""
        try:
            response = self.client.send(self.client.build_request("POST", path, **kwargs), stream=True)
        except httpx.HTTPError as exc:
            raise self._unreachable("POST", path, exc) from None
        if not response.is_success or not response.headers.get("content-type", "").startswith("text/event-stream"):
            try:
                response.read()
            finally:
                response.close()
            self._json(response)  # raises the error the server sent
            raise EngineUnavailable(NOT_THIS_API)
        return RemoteTurnStream(conversation_id, response, speak)

    def _unreachable(self, method: str, path: str, exc: Exception) -> EngineUnavailable:
        logger.warning("%s %s/%s failed: %s", method, self.base_url, path, exc)
        return EngineUnavailable(
            f"The REST API cannot be reached ({type(exc).__name__}): check API_URL and that the API server is running."
        )

    def _json(self, response: httpx.Response) -> Any:
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and data is not None:
            return data
        raise _error(response.status_code, data)


class RemoteTurnStream:
    """A turn's events read from the server's Server-Sent Events, on a thread of its own."""

    holding = False
    """Over REST a turn is never held: the server stores it once it is written."""
    transcript: Optional[str] = None
    """Not followed over REST (hands-free starts no early turns there, so reads no words)."""

    def __init__(self, conversation_id: str, response: httpx.Response, speak: bool = True) -> None:
        self.conversation_id = conversation_id
        self.response = response
        self.speak = speak
        """False: the reader speaks the answer; sentences get their spoken form, audio is dropped."""
        self.events: queue.Queue[TurnEvent] = queue.Queue()
        self._finished = False
        self.thread = threading.Thread(target=self._read, name="remote-turn", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        last: Optional[TurnEvent] = None
        try:
            for name, data in sse.events(self.response.iter_lines()):
                last = _event(self.conversation_id, name, data)
                if not self.speak and isinstance(last, SentenceAudio):
                    continue
                if not self.speak and isinstance(last, Sentence):
                    last = replace(last, spoken=spoken(last.text))
                if last is not None:
                    self.events.put(last)
                if isinstance(last, (Done, Failed)):
                    return
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning("Reading a streamed turn failed: %s", exc)
        finally:
            self.response.close()
            if not isinstance(last, (Done, Failed)):
                self.events.put(Failed(EngineUnavailable(
                    "The REST API closed the stream before the answer was complete: try again.")))

    @property
    def finished(self) -> bool:
        return self._finished

    def next_event(self, timeout: Optional[float] = None) -> Optional[TurnEvent]:
        if self._finished:
            return None
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return None
        self._finished = isinstance(event, (Done, Failed))
        return event

    def __iter__(self) -> Iterator[TurnEvent]:
        while (event := self.next_event()) is not None:
            yield event

    def close(self) -> None:
        """Stop reading (the server still finishes the turn and stores it whole)."""
        self.response.close()

    def interrupt(self, played: int) -> None:
        """Over REST a turn cannot be cut short: the server finishes and stores the whole answer."""
        self.close()

    def heard(self) -> None:
        """Nothing to do: over REST the turn was stored once it was written."""

    def cancel(self) -> None:
        """Over REST a turn cannot be thrown away (RemoteService.cancellable_turns is False)."""
        raise EngineUnavailable("A turn of a remote API cannot be thrown away: the server stores it whole.")

    def wait(self) -> None:
        """Until the server's stream has ended (or was closed)."""
        self.thread.join()

    def result(self) -> TurnResult:
        last = None
        for last in self:
            pass
        return result_of(last)


@contextmanager
def _understood() -> Iterator[None]:
    """A success answer that is not what this app's API sends (a wrong API_URL) as EngineUnavailable."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("The REST API's answer was not understood: %r", exc)
        raise EngineUnavailable(NOT_THIS_API) from None


def _event(conversation_id: str, name: str, data: dict) -> Optional[TurnEvent]:
    if name == Heard.name:
        return Heard(data["text"])
    if name == Sentence.name:
        return Sentence(data["index"], data["text"])
    if name == SentenceAudio.name:
        return SentenceAudio(data["index"], _unb64(data["audio"]))
    if name == Done.name:
        return Done(_turn(conversation_id, data))
    if name == Failed.name:
        return Failed(_error(data.get("status", 503), data))
    return None  # an event a newer server sends: not ours to read


def _error(status: int, data: Any) -> VoiceQnAError:
    message = data.get("error") if isinstance(data, dict) else None
    if status in (401, 403):
        return Unauthorized(f"The REST API refused the request ({status}): set API_KEY to the server's key.")
    kind = BY_NAME.get(data.get("type", "")) if isinstance(data, dict) else None
    if message is None:
        return EngineUnavailable(f"The REST API answered {status} without a usable body: {NOT_THIS_API}")
    return (kind or from_status(status))(message)


def _turn(conversation_id: str, data: dict) -> TurnResult:
    t = data.get("timings_ms") or {}
    timings = Timings(**{f"{name}_ms": t.get(name, 0.0) for name in (
        "decode", "asr", "chat", "tts", "store", "total", "first_token", "first_audio")})
    return TurnResult(
        conversation_id=conversation_id,
        transcript=data.get("transcript", ""),
        text=data["text"],
        audio=_unb64(data["audio"]),
        timings=timings,
        stored=data.get("stored", True),
        audio_error=data.get("audio_error", ""),
        repeated=data.get("repeated", False),
    )


def _key_header(key: str) -> dict:
    """The Idempotency-Key header (none for ""): the server says 400 for a malformed one."""
    return {"Idempotency-Key": key} if key else {}


def _upload(data: bytes) -> dict:
    return {"audio": ("audio", data, "application/octet-stream")}


def _segment(conversation_id: str) -> str:
    """The id as one URL path segment (a malformed id reaches the server, which says 404)."""
    return quote(str(conversation_id), safe="")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""
