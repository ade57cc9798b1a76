"""The hands-free panel's JSON calls (its script, through Gradio's component server): request dicts in, reply dicts out."""

from __future__ import annotations

import base64
import binascii

import numpy as np

from voiceqna import audio
from voiceqna.endpointing import State
from voiceqna.errors import InvalidInput
from voiceqna.page.handlers import PageHandlers
from voiceqna.page.handsfree_session import GONE, Reply


def feed(page: PageHandlers, request: dict) -> dict:
    """{token, audio: base64 16 kHz 16-bit mono PCM, playing, barge_in} -> Reply.as_json()."""
    try:
        token = _field(request, "token", str)
        samples = pcm16_samples(_base64(_field(request, "audio", str)))
        playing, barge_in = bool(request.get("playing")), bool(request.get("barge_in"))
    except InvalidInput as exc:
        return Reply(State.LISTENING.value, error=str(exc)).as_json()
    speak = request.get("speak") is not False  # false: the browser speaks this tab's answers
    return page.hands_free.feed(token, samples, playing, barge_in, speak).as_json()


def interrupt(page: PageHandlers, request: dict) -> dict:
    """{token, turn, played} -> {interrupted}: the answer playing in this tab was cut short."""
    try:
        token, turn, played = _field(request, "token", str), _field(request, "turn", str), request.get("played")
        if not isinstance(played, int) or isinstance(played, bool):
            raise InvalidInput("played must be a whole number of sentences.")
    except InvalidInput as exc:
        return {"interrupted": False, "error": str(exc)}
    if token not in page.hands_free:
        return {"interrupted": False, "error": GONE}
    return {"interrupted": page.interrupt(turn, played), "error": ""}


def heard(page: PageHandlers, request: dict) -> dict:
    """{token, turn} -> {heard}: the answer of this tab's turn has been played to its end."""
    try:
        token, turn = _field(request, "token", str), _field(request, "turn", str)
    except InvalidInput as exc:
        return {"heard": False, "error": str(exc)}
    if token not in page.hands_free:
        return {"heard": False, "error": GONE}
    return {"heard": page.heard(turn), "error": ""}


def close(page: PageHandlers, request: dict) -> dict:
    """{token} -> {closed}: hands-free switched off, or the tab is closing."""
    try:
        return {"closed": page.hands_free.close(_field(request, "token", str))}
    except InvalidInput:
        return {"closed": False}


def pcm16_samples(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM as float32 in [-1, 1]."""
    if len(data) % 2:
        raise InvalidInput("The audio must be 16-bit PCM: an even number of bytes.")
    return audio.from_pcm16(np.frombuffer(data, dtype="<i2"))


def _field(request: object, name: str, kind: type):
    value = request.get(name) if isinstance(request, dict) else None
    if not isinstance(value, kind):
        raise InvalidInput(f"The request needs {name!r} ({kind.__name__}).")
    return value


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("The audio must be base64 text.") from None
