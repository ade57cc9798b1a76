"""The one Server-Sent Events reader (voiceqna/sse.py) reads what the API writes, as a browser's
EventSource would: events end at a blank line, comments are skipped, data lines are joined."""

from __future__ import annotations

import pytest

from voiceqna import sse
from voiceqna.api.stream import sse as written
from voiceqna.ports import Heard, Sentence, SentenceAudio


def lines_of(text: str) -> list[str]:
    """Lines as requests' and httpx's iter_lines give them (no line ends)."""
    return text.splitlines()


def test_the_api_s_own_events_read_back_in_order():
    stream = "".join(written(e) for e in (Heard("부산까지 얼마나 걸려요?"), Sentence(0, "두 시간 반이요."),
                                          SentenceAudio(0, b"RIFF")))
    assert list(sse.events(lines_of(stream))) == [
        ("transcript", {"text": "부산까지 얼마나 걸려요?"}),
        ("sentence", {"index": 0, "text": "두 시간 반이요."}),
        ("audio", {"index": 0, "audio": "UklGRg=="}),
    ]


@pytest.mark.parametrize("text, expected", [
    (": keep-alive\n\nevent: done\ndata: {\"a\": 1}\n\n", [("done", {"a": 1})]),
    ("data: {\"a\":\ndata: 2}\n\n", [("message", {"a": 2})]),  # data lines joined; no name is "message"
    ("event:done\ndata:{\"a\": 1}\nid: 7\nretry: 10\n\n", [("done", {"a": 1})]),  # no space; other fields skipped
    ("event: sentence\n\nevent: done\ndata: {}\n\n", [("done", {})]),  # an event without data is dropped
    ("event: done\ndata: {}\n", []),  # not ended by a blank line: not an event yet
])
def test_events_are_read_as_an_event_source_would(text, expected):
    assert list(sse.events(lines_of(text))) == expected


def test_bytes_lines_are_read_as_utf8():
    assert list(sse.events([b"event: transcript", "data: {\"text\": \"안녕\"}".encode(), b""])) == [
        ("transcript", {"text": "안녕"})]
