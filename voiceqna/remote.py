"""RemoteService: ChatService's interface over the REST API (voiceqna/api.py), for the page in
remote mode (API_URL) — the seed's two-part deployment, the page here and the engines elsewhere.

Same methods, same dataclasses, same exceptions: an HTTP error status becomes the
voiceqna.errors type the server raised (its `type` field, else the status), and a server
that cannot be reached is EngineUnavailable.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Sequence
from urllib.parse import quote

import requests

from voiceqna.errors import (
    AudioTooLarge,
    BadAudio,
    EmptyAudio,
    EngineUnavailable,
    InvalidInput,
    NotFound,
    Overloaded,
    RequestTimeout,
    VoiceQnAError,
)
from voiceqna.service import EngineInfo, Limits, Message, Timings, TurnResult

logger = logging.getLogger(__name__)

_ERRORS_BY_TYPE: dict[str, type[VoiceQnAError]] = {
    cls.__name__: cls for cls in (InvalidInput, NotFound, BadAudio, EmptyAudio, AudioTooLarge, EngineUnavailable,
                                  Overloaded, RequestTimeout)
}
_ERRORS_BY_STATUS: dict[int, type[VoiceQnAError]] = {
    400: InvalidInput, 404: NotFound, 408: RequestTimeout, 413: AudioTooLarge, 415: BadAudio, 422: InvalidInput,
    503: EngineUnavailable,
}


class RemoteService:
    """Calls the REST API at `base_url` (e.g. http://gpu-box:5000, or http://host:7860/api)."""

    def __init__(self, base_url: str, api_key: str = "", timeout_s: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._limits: Limits | None = None

    @property
    def info(self) -> EngineInfo:
        data = self._call("GET", "info")
        return EngineInfo(data["recognizer"], data["chat"], data["tts"], data["store"])

    @property
    def limits(self) -> Limits:
        """The server's limits (fetched once)."""
        if self._limits is None:
            data = self._call("GET", "info")["limits"]
            self._limits = Limits(data["max_upload_bytes"], data["max_audio_s"], data["max_message_chars"])
        return self._limits

    def create(self, messages: Sequence[Message] = ()) -> str:
        body = {
            "messages": [m.text for m in messages],
            "roles": [m.role for m in messages],
            "audios": [base64.b64encode(m.audio).decode("ascii") for m in messages],
        }
        return self._call("POST", "create", json=body)["id"]

    def get(self, conversation_id: str) -> list[Message]:
        data = self._call("GET", _segment(conversation_id))
        return [Message(role=m["role"], text=m["message"], audio=_unb64(m["audio"])) for m in data]

    def reset(self, conversation_id: str) -> None:
        self._call("POST", f"reset/{_segment(conversation_id)}")

    def send_text(self, conversation_id: str, text: str, role: str = "user") -> TurnResult:
        data = self._call("POST", f"send/text/{_segment(conversation_id)}", json={"message": text, "role": role})
        return _turn(conversation_id, data, default_transcript=text)

    def send_audio(self, conversation_id: str, data: bytes) -> TurnResult:
        files = {"audio": ("audio", data, "application/octet-stream")}
        answer = self._call("POST", f"send/audio/{_segment(conversation_id)}", files=files)
        return _turn(conversation_id, answer, default_transcript="")

    def close(self) -> None:
        self.session.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/{path}"
        try:
            response = self.session.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            logger.warning("%s %s failed: %s", method, url, exc)
            raise EngineUnavailable(
                f"The REST API at {self.base_url} cannot be reached ({type(exc).__name__}): "
                "check API_URL and that the API server is running."
            ) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.ok and data is not None:
            return data
        raise _error(response.status_code, data, self.base_url)


def _error(status: int, data: Any, base_url: str) -> VoiceQnAError:
    message = data.get("error") if isinstance(data, dict) else None
    if status in (401, 403):
        return EngineUnavailable(
            f"The REST API at {base_url} refused the request ({status}): set API_KEY to the server's key."
        )
    kind = _ERRORS_BY_TYPE.get(data.get("type", "")) if isinstance(data, dict) else None
    kind = kind or _ERRORS_BY_STATUS.get(status)
    if kind is None or message is None:
        return EngineUnavailable(
            f"The REST API at {base_url} answered {status}"
            + (f": {message}" if message else " without a usable body: check API_URL points at this app's API.")
        )
    return kind(message)


def _turn(conversation_id: str, data: dict, default_transcript: str) -> TurnResult:
    t = data.get("timings_ms") or {}
    timings = Timings(
        decode_ms=t.get("decode", 0.0), asr_ms=t.get("asr", 0.0), chat_ms=t.get("chat", 0.0),
        tts_ms=t.get("tts", 0.0), store_ms=t.get("store", 0.0), total_ms=t.get("total", 0.0),
    )
    return TurnResult(
        conversation_id=conversation_id,
        transcript=data.get("transcript", default_transcript),
        text=data["text"],
        audio=_unb64(data["audio"]),
        timings=timings,
        stored=data.get("stored", True),
        audio_error=data.get("audio_error", ""),
    )


def _segment(conversation_id: str) -> str:
    """The id as one URL path segment (a malformed id reaches the server, which says 404)."""
    return quote(str(conversation_id), safe="")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""
