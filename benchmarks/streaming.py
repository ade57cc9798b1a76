"""Streamed turns: time to the first answer audio on the streaming routes against the whole turn on
the non-streaming ones, with a chat model that writes at a realistic pace.

    python benchmarks/streaming.py            # 8 questions and 8 recordings, 1 and 8 clients (~6 min on 2 cores)
    python benchmarks/streaming.py --quick    # 2 of each, 1 and 2 clients
    python benchmarks/streaming.py --first-token-s 0.4 --tokens-per-s 15

The chat model is a FAKE OpenAI-compatible server on loopback (`tests/fake_openai.py`: a real
one cannot run here) that streams each answer — three Korean sentences of 25-35 syllables, a
different answer every turn, so the speech cache never helps — as tokens of two characters:
the first after --first-token-s, then --tokens-per-s a second. Everything else is real:
`python app.py --api-only` with CHAT_ENGINE=openai pointed at the fake, espeak-ng speaking,
Whisper base recognizing, SQLite.

Each client has its own conversation and, per question, sends the same question once to
`POST /send/text/<id>/stream` (Server-Sent Events: transcript, sentence, audio…, done) and
once to `POST /send/text/<id>` (one JSON answer), in alternating order; then the same for
spoken turns with the real recordings (`/send/audio/<id>[/stream]`, recognition included).
Measured at the client: the whole turn (the non-streaming answer read), the first `audio`
event read (first audio), and the `done` event. Targets: first-audio p50 ≤ 0.45 × whole-turn
p50; for typed turns, first audio ≤ first token + the time the model takes to write the first
sentence + 300 ms. Gaps (1 client): playing each sentence's WAV as it arrives, a stall is a
sentence whose audio arrives after the previous one has finished playing.
"""

from __future__ import annotations

import argparse
import base64
import io
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor

import numpy as np


from benchmarks import common
from voiceqna import sse
from tests.fake_openai import TOKEN_CHARS, FakeOpenAI

NAME = "streaming"
RATIO_TARGET = 0.45
TYPED_MARGIN_S = 0.3
PLACES = ("서울", "부산", "대구", "인천", "광주", "대전", "울산", "수원", "전주", "경주", "강릉", "제주", "춘천", "여수",
          "목포", "포항", "안동", "속초", "통영", "공주")
TOPICS = ("날씨", "음식", "역사", "시장", "공원", "축제", "바다", "골목", "카페", "서점", "야경", "사찰", "온천", "등산",
          "기차", "버스", "한옥", "공연", "체험", "명소")


def answer(number: int) -> str:
    """Three Korean sentences of 25-35 syllables; `number` < 400 gives sentences never given before."""
    place, topic = PLACES[number % len(PLACES)], TOPICS[(number // len(PLACES)) % len(TOPICS)]
    return (f"{place} {topic}에 대해 물어보셨는데 제가 아는 대로 차근차근 설명해 드릴게요. "
            f"{place}의 {topic}에 관해서는 계절마다 분위기가 조금씩 달라서 언제 가도 새로워요. "
            f"더 궁금한 점이 있으면 {place} {topic} 정보와 함께 편하게 다시 물어봐 주세요.")


def syllables(sentence: str) -> int:
    return sum("가" <= ch <= "힣" for ch in sentence)


class Answers:
    """The fake model's answers, one new one per request (thread-safe)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> str:
        with self.lock:
            self.count += 1
            return answer(self.count)


def first_sentence_written_s(text: str, first_token_s: float, tokens_per_s: float) -> float:
    """When the fake model has written the first sentence's last character (its full stop)."""
    token = text.index(".") // TOKEN_CHARS
    return first_token_s + token / tokens_per_s


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


# --- one turn, as a client sees it ---


def streamed(client, path: str, **request) -> dict:
    """POST to a streaming route and read its events; seconds since the request for each."""
    started = time.perf_counter()
    out: dict = {"sentences": [], "audio": []}
    with client.stream("POST", path, **request) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.read()[:200]!r}")
        for name, data in sse.events(response.iter_lines()):
            at = time.perf_counter() - started
            if name == "transcript":
                out["transcript_s"], out["transcript"] = at, data["text"]
            elif name == "sentence":
                out["sentences"].append({"index": data["index"], "text": data["text"], "at_s": at})
            elif name == "audio":
                out["audio"].append({"index": data["index"], "at_s": at,
                                     "duration_s": wav_seconds(base64.b64decode(data["audio"]))})
            elif name == "done":
                out.update(done_s=at, answer=data["text"], server_timings_ms=data["timings_ms"])
            elif name == "error":
                raise RuntimeError(f"{path}: error event {data}")
    out["first_audio_s"] = out["audio"][0]["at_s"] if out["audio"] else None
    return out


def whole(client, path: str, **request) -> dict:
    started = time.perf_counter()
    response = client.post(path, **request)
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
    body = response.json()
    return {"whole_s": time.perf_counter() - started, "answer": body["text"], "transcript": body["transcript"],
            "server_timings_ms": body["timings_ms"]}


def stalls(audio: list[dict]) -> list[float]:
    """Seconds the player waits before each later sentence, playing each WAV as it arrives."""
    waits, playing_until = [], None
    for a in sorted(audio, key=lambda a: a["index"]):
        if playing_until is not None and a["at_s"] > playing_until:
            waits.append(a["at_s"] - playing_until)
        playing_until = max(a["at_s"], playing_until or 0.0) + a["duration_s"]
    return waits


# --- clients ---


def client_run(server: common.Server, kind: str, items: list, offset: int, conversation: str,
               start: threading.Barrier) -> list[dict]:
    """One client: for each item (question or clip), the streaming and the whole route, alternating."""
    import httpx

    rows = []
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=600) as client:
        start.wait()
        for j in range(len(items)):
            item = items[(offset + j) % len(items)]
            if kind == "typed":
                request, label = {"json": {"message": item, "role": "user"}}, item
            else:
                request, label = {"files": {"audio": ("question.wav", item.wav, "audio/wav")}}, item.name
            base = f"/send/{'text' if kind == 'typed' else 'audio'}/{conversation}"
            row = {"kind": kind, "item": label}
            for route in (("stream", "whole") if (offset + j) % 2 == 0 else ("whole", "stream")):
                if route == "stream":
                    row["stream"] = streamed(client, f"{base}/stream", **request)
                else:
                    row["whole"] = whole(client, base, **request)
            rows.append(row)
    return rows


def run_level(server: common.Server, kind: str, items: list, clients: int) -> list[dict]:
    """`clients` clients at once, each with a conversation of its own, starting together."""
    api = common.Api(server.url, server.headers)
    conversations = [api.create() for _ in range(clients)]
    api.close()
    start = threading.Barrier(clients)
    with ThreadPoolExecutor(clients) as pool:
        runs = list(pool.map(lambda k: client_run(server, kind, items, k, conversations[k], start), range(clients)))
    rows = [dict(r, clients=clients) for run in runs for r in run]
    for r in rows:
        r["stream"]["stall_s"] = stalls(r["stream"]["audio"])
    return rows


def summarise(rows: list[dict], first_token_s: float, tokens_per_s: float) -> dict:
    whole_s = [r["whole"]["whole_s"] for r in rows]
    first = [r["stream"]["first_audio_s"] for r in rows if r["stream"]["first_audio_s"] is not None]
    out = {"turns": len(rows), "whole_s": common.p50_p95(whole_s), "first_audio_s": common.p50_p95(first),
           "stream_done_s": common.p50_p95([r["stream"]["done_s"] for r in rows]),
           "transcript_s": common.p50_p95([r["stream"]["transcript_s"] for r in rows]),
           "server_first_token_s": common.p50_p95([r["stream"]["server_timings_ms"]["first_token"] / 1000 for r in rows]),
           "sentences_p50": float(np.median([len(r["stream"]["audio"]) for r in rows]))}
    ratio = out["first_audio_s"]["p50"] / out["whole_s"]["p50"] if first else None
    out["first_audio_over_whole_p50"] = ratio
    out["ratio_target_met"] = ratio is not None and ratio <= RATIO_TARGET
    if rows and rows[0]["kind"] == "typed":
        margins = [r["stream"]["first_audio_s"] - first_sentence_written_s(r["stream"]["answer"], first_token_s,
                                                                           tokens_per_s) for r in rows]
        out["first_audio_minus_first_sentence_written_s"] = common.p50_p95(margins)
        out["typed_turns_over_margin"] = sum(m > TYPED_MARGIN_S for m in margins)
    stalled = [r["stream"]["stall_s"] for r in rows]
    out["stalls"] = {"turns": len(rows), "turns_with_a_stall": sum(bool(s) for s in stalled),
                     "stalls": sum(len(s) for s in stalled), "longest_s": max((max(s) for s in stalled if s), default=0.0),
                     "sentence_gaps_checked": sum(max(0, len(r["stream"]["audio"]) - 1) for r in rows)}
    return out


def markdown(head: dict, args: argparse.Namespace, summary: dict, info: dict) -> str:
    rows = []
    for key, s in summary.items():
        ratio = s["first_audio_over_whole_p50"]
        rows.append([key, f"{common.fmt(s['whole_s']['p50'])} / {common.fmt(s['whole_s']['p95'])} s",
                     f"{common.fmt(s['first_audio_s']['p50'])} / {common.fmt(s['first_audio_s']['p95'])} s",
                     f"{common.fmt(ratio)} ({'met' if s['ratio_target_met'] else 'missed'})",
                     f"{s['stalls']['stalls']} in {s['stalls']['sentence_gaps_checked']}"])
    lines = [f"Streamed turns: a FAKE OpenAI-compatible model (first token {args.first_token_s} s, "
             f"{args.tokens_per_s} tokens/s, 3 sentences), {info.get('tts')}, {info.get('recognizer')}. "
             f"{common.header_line(head)}", "",
             common.table(["turns (clients)", "whole turn p50 / p95", "first audio p50 / p95",
                           f"first audio ÷ whole, p50 (target ≤ {RATIO_TARGET})", "stalls between sentences"], rows)]
    for key, s in summary.items():
        if "typed_turns_over_margin" in s:
            m = s["first_audio_minus_first_sentence_written_s"]
            lines.append(f"\n{key}: first audio − (first token + first sentence written): p50 {m['p50']:.3f} s, "
                         f"p95 {m['p95']:.3f} s; {s['typed_turns_over_margin']} of {s['turns']} turns over "
                         f"{TYPED_MARGIN_S} s.")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "2 questions and 2 recordings, 1 and 2 clients", NAME)
    parser.add_argument("--first-token-s", type=float, default=0.4, help="the fake model's time to its first token")
    parser.add_argument("--tokens-per-s", type=float, default=15.0, help="the fake model's pace after that")
    parser.add_argument("--clients", help="levels, comma-separated (default 1,8; quick 1,2)")
    parser.add_argument("--questions", type=int, help="typed questions per client (default 8; quick 2)")
    parser.add_argument("--recordings", type=int, help="real recordings of up to 6 s per client (default 8; quick 2; "
                                                       "espeak-ng questions where they are absent)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    levels = [int(x) for x in (args.clients or ("1,2" if args.quick else "1,8")).split(",")]
    questions = list(common.QUESTIONS[:args.questions or (2 if args.quick else 8)])
    recordings = args.recordings if args.recordings is not None else (2 if args.quick else 8)
    clips = [c for c in common.real_clips() if c.duration_s <= 6.0][:recordings] or common.espeak_clips(recordings)
    fake = FakeOpenAI(first_token_s=args.first_token_s, tokens_per_s=args.tokens_per_s, answer_for=Answers())
    settings = {"CHAT_ENGINE": "openai", "OPENAI_API_KEY": "fake", "OPENAI_BASE_URL": fake.base_url,
                "TTS_ENGINE": "espeak"}
    rows: list[dict] = []
    try:
        with common.app_server(settings) as server:
            import httpx

            info = httpx.get(f"{server.url}/info", timeout=30).json()
            run_level(server, "typed", questions[:1], 1)  # untimed: the first turn of each kind
            run_level(server, "spoken", clips[:1], 1)
            for kind, items in (("typed", questions), ("spoken", clips)):
                for clients in levels:
                    level = run_level(server, kind, items, clients)
                    rows += level
                    common.logger.info("%s, %d clients: %d turns", kind, clients, len(level))
    finally:
        fake.close()
    summary = {f"{kind} ({clients})": summarise(chosen, args.first_token_s, args.tokens_per_s)
               for kind in ("typed", "spoken") for clients in levels
               if (chosen := [r for r in rows if r["kind"] == kind and r["clients"] == clients])}
    sentences = [s for n in range(1, 401) for s in answer(n).split(". ")]
    text = markdown(head, args, summary, info)
    common.finish(NAME, args, head, {
        "fake_model": {"first_token_s": args.first_token_s, "tokens_per_s": args.tokens_per_s,
                       "token_chars": TOKEN_CHARS, "sentences_per_answer": 3,
                       "syllables_per_sentence": [min(map(syllables, sentences)), max(map(syllables, sentences))],
                       "example": answer(1)},
        "server": {"info": info}, "targets": {"first_audio_over_whole_p50": RATIO_TARGET,
                                              "typed_first_audio_margin_s": TYPED_MARGIN_S},
        "summary": summary, "turns": rows, "markdown": text})
    return summary


if __name__ == "__main__":
    main()
