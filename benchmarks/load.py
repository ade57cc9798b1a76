"""Load: many conversations at once against a real API server on loopback, then a check that
every conversation holds exactly its turns, in order, and that the server is still healthy.

    python benchmarks/load.py --conversations 50 --turns 4 --audio-every 3   # the README's run (~5 min on 2 cores)
    python benchmarks/load.py --quick                           # 5 conversations × 2 turns
    python benchmarks/load.py --url http://127.0.0.1:5000 --api-key KEY   # a server you started

Without --url it starts the app on its defaults (Whisper base, the offline chat engine,
espeak-ng, SQLite in a temporary DATA_DIR, a random API_KEY). Writes
benchmarks/results/load.json (the header of benchmarks/common.py, then the report).

Each conversation is one client thread: /create, then its turns one after the other. Turn
number g (counted over all conversations) is audio when g % audio_every == audio_every - 1
(a Korean WAV made with espeak-ng), otherwise a text message that names its conversation and
turn. Afterwards GET /<id> must give back exactly the turns that were answered and stored —
nothing lost, nothing duplicated, in order — and /health must answer.

Bounded: at most 200 conversations and 20 turns each; no turn starts after --timeout seconds.
Loopback only: the script refuses any other host.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import requests


from benchmarks import common
from voiceqna.evaluation.clips import espeak

NAME = "load"
MAX_CONVERSATIONS = 200
MAX_TURNS = 20
SPOKEN = ("고마워요", "지금 몇 시예요?", "오늘 무슨 요일이에요?", "안녕히 계세요", "무엇을 도와줄 수 있어요?")
"""What the audio turns say (espeak-ng Korean; robotic, so some may be heard as nothing)."""


@dataclass
class TurnRecord:
    conversation: int
    index: int
    kind: str
    """text or audio"""
    status: int = 0
    """HTTP status; 0 when the request itself failed (connection, client timeout)."""
    latency_s: float = 0.0
    user_text: str = ""
    """What the conversation should hold as the user's message (typed text, or the transcript)."""
    answer: str = ""
    answer_audio_sha: str = ""
    stored: bool = False
    error: str = ""


@dataclass
class Report:
    url: str
    conversations: int
    turns_per_conversation: int
    audio_every: int
    turns_sent: int = 0
    turns_ok: int = 0
    audio_turns_ok: int = 0
    audio_turns_not_heard: int = 0
    turns_not_run: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """'status: message' → count, for every turn or create that did not get its 2xx."""
    wall_s: float = 0.0
    turns_per_s: float = 0.0
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """kind (all, text, audio, health) → p50, p95, max; health: GET /health polled during the load."""
    integrity_problems: list[str] = field(default_factory=list)
    kept_after_client_gave_up: int = 0
    """Turns whose client timed out but that the server finished and stored (whole)."""
    healthy_after: bool = False
    conversation_ids: list[str] = field(default_factory=list)


# --- the server ---


def healthy(url: str, session: requests.Session | None = None) -> bool:
    try:
        return (session or requests).get(f"{url}/health", timeout=10).status_code == 200
    except requests.RequestException:
        return False


# --- the clients ---


def espeak_clips() -> list[bytes]:
    """One WAV per sentence of SPOKEN, made with espeak-ng's Korean voice."""
    return [espeak(sentence) for sentence in SPOKEN]


def text_of(conversation: int, index: int) -> str:
    return f"부하 시험 {conversation}번 대화의 {index + 1}번째 질문: 이름이 뭐예요?"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


EMPTY_SHA = sha(b"")


class Client:
    def __init__(self, url: str, api_key: str, request_timeout_s: float, deadline: float) -> None:
        self.url, self.request_timeout_s, self.deadline = url, request_timeout_s, deadline
        self.headers = {"X-API-Key": api_key} if api_key else {}
        self.local = threading.local()

    @property
    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers.update(self.headers)
        return self.local.session

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(f"{self.url}{path}", timeout=self.request_timeout_s, **kwargs)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=self.request_timeout_s)


@dataclass
class Played:
    conversation_id: str
    """'' when /create failed."""
    records: list[TurnRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_conversation(client: Client, number: int, kinds: list[str], clips: list[bytes]) -> Played:
    """Create one conversation and play its turns in order."""
    try:
        response = client.post("/create", json={})
    except requests.RequestException as exc:
        return Played("", errors=[f"create: {type(exc).__name__}"])
    if response.status_code != 201:
        return Played("", errors=[f"create {response.status_code}: {response.text[:120]}"])
    played = Played(response.json()["id"])
    for index, kind in enumerate(kinds):
        if time.monotonic() > client.deadline:
            break
        record = TurnRecord(number, index, kind)
        started = time.perf_counter()
        try:
            if kind == "audio":
                clip = clips[(number + index) % len(clips)]
                response = client.post(f"/send/audio/{played.conversation_id}",
                                       files={"audio": ("question.wav", clip, "audio/wav")})
            else:
                record.user_text = text_of(number, index)
                response = client.post(f"/send/text/{played.conversation_id}",
                                       json={"message": record.user_text, "role": "user"})
            record.status = response.status_code
        except requests.RequestException as exc:
            record.error = type(exc).__name__
        record.latency_s = time.perf_counter() - started
        if record.status == 200:
            body = response.json()
            record.user_text, record.answer, record.stored = body["transcript"], body["text"], body["stored"]
            record.answer_audio_sha = sha(body["audio"].encode())
        elif record.status:
            record.error = f"{record.status}: {response.json().get('error', '')[:120]}"
        if record.error:
            played.errors.append(record.error)
        played.records.append(record)
    return played


def plan(conversations: int, turns: int, audio_every: int) -> list[list[str]]:
    """The kind of every turn: turn g (over all conversations) is audio when g % audio_every == audio_every - 1."""
    def kind(g: int) -> str:
        return "audio" if audio_every and g % audio_every == audio_every - 1 else "text"

    return [[kind(c * turns + t) for t in range(turns)] for c in range(conversations)]


# --- the check afterwards ---


def check_conversation(client: Client, conversation_id: str, records: list[TurnRecord]) -> tuple[list[str], int]:
    """Problems with what the server holds, and how many turns it kept after the client gave up.

    Every answered turn must be there, whole and in order, with the recording of a spoken
    question; a turn not answered with 200 must be absent, except one whose client gave up
    waiting (timeout): the server may have finished it, so it may be there, but only whole.
    """
    try:
        response = client.get(f"/{conversation_id}")
    except requests.RequestException as exc:
        return [f"{conversation_id}: GET failed ({type(exc).__name__})"], 0
    if response.status_code != 200:
        return [f"{conversation_id}: GET gave {response.status_code}"], 0
    got = [(m["role"], m["message"], sha(m["audio"].encode()) if m["role"] == "assistant" else "", bool(m["audio"]))
           for m in response.json()]
    at, kept_anyway = 0, 0
    for number, r in enumerate(sorted(records, key=lambda r: r.index)):
        pair = got[at:at + 2]
        if r.status == 200 and r.stored:
            want = [("user", r.user_text, "", r.kind == "audio"),
                    ("assistant", r.answer, r.answer_audio_sha, r.answer_audio_sha != EMPTY_SHA)]
            if pair != want:
                return [f"{conversation_id}: turn {r.index + 1} is missing, altered or out of order"], kept_anyway
            at += 2
        elif r.status == 0 and [m[0] for m in pair] == ["user", "assistant"] and (
                r.kind == "audio" or pair[0][1] == r.user_text) and not matches_next(pair, records, number):
            kept_anyway += 1
            at += 2
    if at != len(got):
        return [f"{conversation_id}: holds {len(got) - at} messages nobody sent (or a half turn)"], kept_anyway
    return [], kept_anyway


def matches_next(pair: list[tuple], records: list[TurnRecord], number: int) -> bool:
    """Whether `pair` is the next answered turn after record `number` (so not a kept timed-out one)."""
    later = [r for r in sorted(records, key=lambda r: r.index)[number + 1:] if r.status == 200 and r.stored]
    return bool(later) and pair[0][1] == later[0].user_text and pair[1][1] == later[0].answer


def poll_health(client: Client, done: threading.Event, every_s: float = 0.5) -> list[float]:
    """Latencies of GET /health while the load runs (a liveness probe must stay fast)."""
    latencies = []
    while not done.wait(every_s):
        started = time.perf_counter()
        healthy(client.url, client.session)  # a probe that fails counts as the time it waited (10 s at most)
        latencies.append(time.perf_counter() - started)
    return latencies


def percentiles(values: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p95, max and how many ({} for none)."""
    return common.spread([v * 1000 for v in values], 1) if values else {}


def run_load(url: str, conversations: int = 50, turns: int = 4, audio_every: int = 4, api_key: str = "",
             timeout_s: float = 600.0, request_timeout_s: float = 300.0, clips: list[bytes] | None = None) -> Report:
    """Drive `url` with `conversations` clients at once, then check every conversation. See the module doc."""
    common.require_loopback(url)
    if not 1 <= conversations <= MAX_CONVERSATIONS or not 1 <= turns <= MAX_TURNS:
        raise ValueError(f"Use 1–{MAX_CONVERSATIONS} conversations and 1–{MAX_TURNS} turns.")
    kinds = plan(conversations, turns, audio_every)
    if clips is None and any("audio" in k for k in kinds):
        clips = espeak_clips()
    report = Report(url, conversations, turns, audio_every)
    started = time.monotonic()
    client = Client(url, api_key, request_timeout_s, deadline=started + timeout_s)
    done = threading.Event()
    with ThreadPoolExecutor(max_workers=conversations + 1) as pool:
        probe = pool.submit(poll_health, client, done)
        futures = [pool.submit(run_conversation, client, c, kinds[c], clips or []) for c in range(conversations)]
        played = [f.result() for f in futures]
        done.set()
        health_latencies = probe.result()
    report.wall_s = round(time.monotonic() - started, 2)
    records = [r for p in played for r in p.records]
    ok = [r for r in records if r.status == 200]
    report.conversation_ids = [p.conversation_id for p in played if p.conversation_id]
    report.turns_sent = len(records)
    report.turns_not_run = conversations * turns - len(records)
    report.turns_ok = len(ok)
    report.audio_turns_ok = sum(r.kind == "audio" for r in ok)
    report.audio_turns_not_heard = sum(r.kind == "audio" and not r.stored for r in ok)
    report.errors = dict(Counter(e for p in played for e in p.errors))
    report.turns_per_s = round(len(ok) / report.wall_s, 2) if report.wall_s else 0.0
    report.latency_ms = {"all": percentiles([r.latency_s for r in ok]),
                         "text": percentiles([r.latency_s for r in ok if r.kind == "text"]),
                         "audio": percentiles([r.latency_s for r in ok if r.kind == "audio"]),
                         "health": percentiles(health_latencies)}
    for p in played:
        if p.conversation_id:
            problems, kept = check_conversation(client, p.conversation_id, p.records)
            report.integrity_problems += problems
            report.kept_after_client_gave_up += kept
    report.healthy_after = healthy(url, client.session)
    return report


def summary(report: Report) -> str:
    """The report in Markdown: what was answered, each kind's latency, errors and the integrity check."""
    lines = [
        f"{report.conversations} conversations × {report.turns_per_conversation} turns "
        f"(audio every {report.audio_every or '—'}): {report.turns_ok}/"
        f"{report.conversations * report.turns_per_conversation} turns answered in {report.wall_s:.1f} s, "
        f"{report.turns_per_s:.2f} turns/s; audio turns answered {report.audio_turns_ok} "
        f"(nothing heard in {report.audio_turns_not_heard}); not run {report.turns_not_run}.",
        "",
        common.table(["latency", "p50", "p95", "max", "n"],
                     [[kind, f"{p['p50'] / 1000:.2f} s", f"{p['p95'] / 1000:.2f} s", f"{p['max'] / 1000:.2f} s", p["n"]]
                      for kind, p in report.latency_ms.items() if p]),
        "",
        f"Errors: {sum(report.errors.values())}" + "".join(f"; {n} × {e}" for e, n in report.errors.items()) + ".",
    ]
    if report.integrity_problems:
        lines += ["Integrity problems:"] + [f"- {p}" for p in report.integrity_problems]
    else:
        lines.append("Integrity: every conversation holds exactly its turns, in order.")
    if report.kept_after_client_gave_up:
        lines.append(f"Turns stored whole after their client gave up waiting: {report.kept_after_client_gave_up}.")
    lines.append(f"Healthy afterwards: {report.healthy_after}.")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "5 conversations × 2 turns, every 3rd spoken", NAME)
    parser.add_argument("--url", help="a running server on loopback; default: start one (temporary DATA_DIR)")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--conversations", type=int, help="clients at once, one conversation each (default 50; quick 5)")
    parser.add_argument("--turns", type=int, help="turns per conversation (default 4; quick 2)")
    parser.add_argument("--audio-every", type=int, help="every K-th turn is spoken (0: text only; default 4; quick 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="no turn starts after this many seconds")
    parser.add_argument("--request-timeout", type=float, default=300.0, help="client timeout per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, head = common.start(NAME, parse_args, argv)
    conversations = args.conversations or (5 if args.quick else 50)
    turns = args.turns or (2 if args.quick else 4)
    audio_every = args.audio_every if args.audio_every is not None else (3 if args.quick else 4)
    if args.url:
        common.require_loopback(args.url)
    server = (nullcontext(common.Server(args.url.rstrip("/"), 0, args.api_key)) if args.url
              else common.app_server(api_key=True))
    with server as running:
        report = run_load(running.url, conversations, turns, audio_every, running.api_key, args.timeout,
                          args.request_timeout)
    text = summary(report)
    report_json = asdict(report)
    report_json["url"] = "given" if args.url else "own (the app's defaults)"
    common.finish(NAME, args, head, {**report_json, "markdown": text})
    ok = not report.errors and not report.integrity_problems and report.healthy_after and not report.turns_not_run
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
