"""The project's own exception types. Front doors map them to messages and statuses."""


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
