"""What a request must be before a turn starts: a message, an idempotency key."""

from __future__ import annotations

import hashlib
import unicodedata

from voiceqna.errors import InvalidInput, shown
from voiceqna.ports import ROLES, Message

MAX_KEY_CHARS = 255
"""The longest Idempotency-Key accepted."""


def checked_message(message: Message, max_chars: int) -> Message:
    """The message with its text NFC and trimmed, or InvalidInput saying what is wrong."""
    if message.role not in ROLES:
        raise InvalidInput(f"Unknown role {shown(message.role)}: use one of {', '.join(ROLES)}.")
    if not isinstance(message.text, str):
        raise InvalidInput("The message must be a string.")
    if len(message.text) > 4 * max_chars:  # far over the limit even after NFC: refused before any work
        raise InvalidInput(f"The message has {len(message.text)} characters, over the limit of {max_chars}.")
    text = unicodedata.normalize("NFC", message.text).strip()
    if "\x00" in text:
        raise InvalidInput("The message contains a NUL character: remove it and send again.")
    if not text.isascii() and not encodable(text):
        raise InvalidInput("The message contains a lone surrogate (half of a UTF-16 pair, e.g. \\ud800): "
                           "send valid Unicode text.")
    if message.role == "user" and not visible(text) and not message.audio:
        raise InvalidInput("The message is empty (or only invisible characters): type or say something first.")
    if len(text) > max_chars:
        raise InvalidInput(f"The message has {len(text)} characters, over the limit of {max_chars}.")
    return Message(message.role, text, message.audio)


def visible(text: str) -> bool:
    """True when something besides spaces, controls and zero-width marks is left to read."""
    return any(unicodedata.category(c)[0] not in "ZC" for c in text)


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def checked_key(key: str) -> str:
    """An Idempotency-Key as clients send them (a UUID, a counter): 1 to MAX_KEY_CHARS visible ASCII characters."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS or not all("!" <= c <= "~" for c in key):
        raise InvalidInput(f"The Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters "
                           "(a UUID is a good one); got " + (shown(key) if isinstance(key, str) else "not a string") + ".")
    return key


def fingerprint(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()
