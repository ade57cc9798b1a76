"""Whole turns over REST: the wall time a client waits for POST /send/audio and /send/text.

    python benchmarks/turns.py              # starts the app (offline engines); 38 clips + 8 typed, 2 rounds (~3 min)
    python benchmarks/turns.py --quick      # 2 real clips + 2 typed questions, 1 round
    python benchmarks/turns.py --url http://127.0.0.1:5000    # a server you started (loopback)

One client, one turn at a time, on the app's defaults (Whisper base, the offline chat engine,
espeak-ng, SQLite) unless --url names another server. The figure is what the client waits:
from sending the request to the whole JSON answer (text and base64 WAV) read — upload,
decoding, recognition, the answer, speech, the store write and the HTTP round trip. The
server's own `timings_ms.total` and the sum of its stage timers are kept beside it, to show
what the stage timers leave out. Each round sends every clip and question once, in a new
conversation; rounds alternate the order. The app's warm-up runs at start, and one untimed
turn of each kind comes first.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext


from benchmarks import common

NAME = "turns"
STAGES = ("decode", "asr", "chat", "tts", "store")


def run_rounds(api: common.Api, clips: list[common.Clip], questions: list[str], rounds: int) -> list[dict]:
    items = [("spoken", c.name, c.source, c.duration_s, c.wav) for c in clips]
    items += [("typed", f"typed-{i}", "typed", 0.0, q) for i, q in enumerate(questions)]
    api.send_audio(api.create(), clips[0].wav)  # untimed: the first turn of each kind
    api.send_text(api.create(), questions[0])
    rows = []
    for round_number in range(rounds):
        conversation = api.create()
        for kind, name, source, duration, payload in (items if round_number % 2 == 0 else items[::-1]):
            send = api.send_audio if kind == "spoken" else api.send_text
            body, waited = send(conversation, payload)
            timings = body["timings_ms"]
            rows.append({"kind": kind, "clip": name, "source": source, "duration_s": round(duration, 3),
                         "client_s": waited, "server_total_s": timings["total"] / 1000,
                         "stage_sum_s": sum(timings[s] for s in STAGES) / 1000, "timings_ms": timings,
                         "transcript": body["transcript"], "answer": body["text"],
                         "answer_audio_bytes": len(body["audio"]) * 3 // 4})
    return rows


GROUPS = {
    "spoken, real 2-4 s": lambda r: r["source"] == "real" and common.SHORT_S[0] <= r["duration_s"] <= common.SHORT_S[1],
    "spoken, real all": lambda r: r["source"] == "real",
    "spoken, espeak-ng questions": lambda r: r["source"] == "espeak",
    "spoken, all": lambda r: r["kind"] == "spoken",
    "typed": lambda r: r["kind"] == "typed",
}


def summarise(rows: list[dict]) -> dict:
    return {"turns": len(rows),
            "client_s": common.p50_p95([r["client_s"] for r in rows]),
            "server_total_s": common.p50_p95([r["server_total_s"] for r in rows]),
            "stage_sum_s": common.p50_p95([r["stage_sum_s"] for r in rows]),
            "client_minus_stage_sum_s": common.p50_p95([r["client_s"] - r["stage_sum_s"] for r in rows])}


def markdown(head: dict, info: dict, summary: dict) -> str:
    rows = [[f"{group} ({s['turns']})",
             f"{common.fmt(s['client_s']['p50'])} / {common.fmt(s['client_s']['p95'])} s",
             f"{common.fmt(s['stage_sum_s']['p50'])} / {common.fmt(s['stage_sum_s']['p95'])} s",
             f"{common.fmt(s['client_minus_stage_sum_s']['p50'], 3)} s"] for group, s in summary.items()]
    return "\n".join([
        f"Whole turns over REST, one client: {info.get('recognizer')}, {info.get('chat')}, {info.get('tts')}, "
        f"{info.get('store')}. {common.header_line(head)}", "",
        common.table(["turns", "client waits p50 / p95", "server stage timers p50 / p95", "not in the timers, p50"],
                     rows)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "2 real clips and 2 typed questions, 1 round", NAME)
    parser.add_argument("--url", help="a running server on loopback (default: start the app on its defaults)")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--rounds", type=int, help="rounds over all clips and questions (default 2; quick 1)")
    parser.add_argument("--real-clips", type=int, help="the first N real recordings (default all; quick 2)")
    parser.add_argument("--espeak-clips", type=int, help="espeak-ng questions (default 8; quick 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    clips = common.load_clips(args.real_clips or (2 if args.quick else None),
                              args.espeak_clips if args.espeak_clips is not None else (0 if args.quick else 8))
    questions = list(common.QUESTIONS[:2] if args.quick else common.QUESTIONS)
    rounds = args.rounds or (1 if args.quick else 2)
    if args.url:
        common.require_loopback(args.url)
    server = nullcontext(common.Server(args.url.rstrip("/"), 0, args.api_key)) if args.url else common.app_server()
    with server as running:
        api = common.Api(running.url, running.headers)
        info = api.info()
        rows = run_rounds(api, clips, questions, rounds)
        api.close()
    summary = {group: summarise(chosen) for group, keep in GROUPS.items() if (chosen := [r for r in rows if keep(r)])}
    text = markdown(head, info, summary)
    common.finish(NAME, args, head, {
        "server": {"url": "own" if not args.url else "given", "info": info}, "rounds": rounds,
        "summary": summary, "turns": rows, "markdown": text})
    return summary


if __name__ == "__main__":
    main()
