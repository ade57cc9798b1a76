"""Ask the Korean Voice Q&A REST API one question and hear the answer sentence by sentence.

    python clients/python/stream_turn.py --url http://localhost:5000 --text "오늘 날씨 어때요?"
    python clients/python/stream_turn.py --url http://localhost:7860/api --audio question.wav --out answer/

Reads the Server-Sent Events of POST /send/{text|audio}/<id>/stream with `requests`
(`iter_lines`): prints what was heard and each sentence as it arrives, and writes each
sentence's WAV to --out as soon as it arrives (a game would queue it on an audio source).
Needs only `requests`.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import requests


def events(response: requests.Response):
    """(name, data) for each Server-Sent Event of a streaming response."""
    name, data = "message", []
    for line in response.iter_lines(decode_unicode=True):
        if not line:  # a blank line ends an event
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:"):].strip())
        # lines starting with ":" are keep-alive comments


def ask(url: str, headers: dict, conversation_id: str, text: str | None, audio: Path | None, out: Path) -> int:
    if text is not None:
        request = dict(json={"message": text, "role": "user"})
        route = f"{url}/send/text/{conversation_id}/stream"
    else:
        request = dict(files={"audio": (audio.name, audio.read_bytes(), "audio/wav")})
        route = f"{url}/send/audio/{conversation_id}/stream"
    with requests.post(route, headers=headers, stream=True, timeout=(10, 120), **request) as response:
        if response.status_code != 200:  # errors before the stream starts are plain JSON
            print(f"error {response.status_code}: {response.json()['error']}", file=sys.stderr)
            return 1
        for name, data in events(response):
            if name == "transcript":
                print(f"heard: {data['text']}")
            elif name == "sentence":
                print(f"answer [{data['index']}]: {data['text']}")
            elif name == "audio":
                path = out / f"sentence-{data['index']}.wav"
                path.write_bytes(base64.b64decode(data["audio"]))
                print(f"audio  [{data['index']}]: {path}")
            elif name == "done":
                print(f"done: stored={data['stored']} first audio after {data['timings_ms']['first_audio']:.0f} ms")
                return 0
            elif name == "error":
                print(f"error {data['status']}: {data['error']}", file=sys.stderr)
                return 1
    print("error: the stream ended without an answer", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:5000", help="the REST API (…:7860/api beside the page)")
    parser.add_argument("--key", default="", help="API_KEY, when the server has one")
    parser.add_argument("--id", help="an existing conversation (default: a new one)")
    question = parser.add_mutually_exclusive_group(required=True)
    question.add_argument("--text", help="a typed question")
    question.add_argument("--audio", type=Path, help="a recorded question (WAV, WebM, OGG, MP3, M4A, FLAC)")
    parser.add_argument("--out", type=Path, default=Path("answer"), help="folder for the sentences' WAV files")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    args.out.mkdir(parents=True, exist_ok=True)
    conversation_id = args.id or requests.post(f"{args.url}/create", json={}, headers=headers, timeout=10).json()["id"]
    print(f"conversation: {conversation_id}")
    return ask(args.url, headers, conversation_id, args.text, args.audio, args.out)


if __name__ == "__main__":
    sys.exit(main())
