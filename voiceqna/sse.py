"""Server-Sent Events read back: (event name, JSON data) for each event of a stream's lines.

The one reader of the streamed turn routes (voiceqna/api/stream.py writes them) for the remote
service, the tests and the benchmarks. clients/python/stream_turn.py keeps a copy of its own so
that it needs nothing but `requests`.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator


def events(lines: Iterable[str | bytes]) -> Iterator[tuple[str, Any]]:
    """(event name, JSON data) for each event, as a browser's EventSource reads them: an event ends
    at a blank line, its data lines are joined, comments (":") and unknown fields are skipped,
    and an event without a name is "message"."""
    name, data = "message", []
    for line in lines:
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
