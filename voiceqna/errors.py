"""The project's own exception types, and the one table that gives each its HTTP status and
its title on the page (the REST API, RemoteService and the page all read ERRORS)."""

from __future__ import annotations

from dataclasses import dataclass


class VoiceQnAError(Exception):
    """Base class: the message is meant for the user and says what to do."""


class InvalidInput(VoiceQnAError):
    """The request itself is wrong (missing text, bad role, lists of different lengths)."""


class NotFound(VoiceQnAError):
    """No conversation has this id."""


class BadAudio(VoiceQnAError):
    """The bytes are not audio that can be decoded (or are truncated beyond repair)."""


class EmptyAudio(BadAudio):
    """The upload holds no samples at all."""


class AudioTooLarge(VoiceQnAError):
    """The upload is bigger, or lasts longer, than the configured limit."""


class EngineUnavailable(VoiceQnAError):
    """An engine (recognizer, chat, speech) or the store failed; nothing was written."""


class Overloaded(EngineUnavailable):
    """Too many turns are already waiting for the recognizer: try again in a few seconds."""


class RequestTimeout(VoiceQnAError):
    """The client took too long to send its request body (a stalled or very slow upload)."""


def shown(value: object, limit: int = 40) -> str:
    """Client input as it may appear in an error message: quoted, cut to `limit` characters,
    and always encodable (a lone surrogate becomes an escape instead of breaking the reply)."""
    text = str(value)
    cut = text[:limit] + ("…" if len(text) > limit else "")
    return repr(cut).encode("utf-8", "backslashreplace").decode("utf-8")


class Unauthorized(VoiceQnAError):
    """The request lacks the API key (REST) or a remote API refused ours."""


@dataclass(frozen=True)
class ErrorKind:
    status: int
    """The HTTP status of the REST API."""
    title: str
    """The first words of the page's warning: Korean, with a short English hint."""


ERRORS: dict[type[VoiceQnAError], ErrorKind] = {
    InvalidInput: ErrorKind(400, "입력을 확인해 주세요 (invalid input)"),
    NotFound: ErrorKind(404, "대화를 찾을 수 없어요 (not found)"),
    BadAudio: ErrorKind(415, "오디오 파일이 아니에요 (not audio)"),
    EmptyAudio: ErrorKind(400, "녹음이 비어 있어요 (empty recording)"),
    AudioTooLarge: ErrorKind(413, "녹음이 너무 길거나 커요 (too long)"),
    RequestTimeout: ErrorKind(408, "요청이 너무 느려요 (request timeout)"),
    Unauthorized: ErrorKind(401, "API 키가 필요해요 (unauthorized)"),
    EngineUnavailable: ErrorKind(503, "엔진 오류 (engine error)"),
    Overloaded: ErrorKind(503, "서버가 바빠요 (server busy)"),
    VoiceQnAError: ErrorKind(500, "요청을 처리하지 못했어요 (error)"),
}
"""Error type → status and title. An error takes its most specific class's entry; a status
without a named type (RemoteService) takes the first type listed with it."""

BY_NAME: dict[str, type[VoiceQnAError]] = {cls.__name__: cls for cls in ERRORS}


def kind_of(exc: VoiceQnAError) -> ErrorKind:
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return ERRORS[VoiceQnAError]


def from_status(status: int) -> type[VoiceQnAError]:
    """The error type for an HTTP status when the body does not name one (the first listed wins)."""
    if status == 422:
        return InvalidInput
    return next((cls for cls, kind in ERRORS.items() if kind.status == status), EngineUnavailable)
