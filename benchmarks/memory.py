"""Memory of the app's process with 1 conversation, 40 and 80: one Whisper model shared, or one each?

    python benchmarks/memory.py            # 1, 40, then 80 conversations of 3 spoken + 3 typed turns, 8 clients (~5 min)
    python benchmarks/memory.py --quick    # 1, 4, then 8 conversations of 1 + 1 turns, 2 clients

Starts `python app.py --api-only` on its defaults and reads the server process's resident
memory (RSS, from the operating system; peak: VmHWM) after start (model loaded, warm-up done),
after one conversation's turns, after --conversations in all, and after as many again, sent by
several clients at once so that both recognizer workers run. The first batch also warms what
grows with turns at once rather than with conversations (threads, allocator arenas, the
speech cache), so the second batch's growth is the cost of a conversation. The Whisper model's
file size is given for scale: a model loaded per conversation would add about that much each.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil


from benchmarks import common

NAME = "memory"
MB = 2**20


def process_memory(pid: int) -> dict:
    process = psutil.Process(pid)
    peak_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
    return {"rss_mb": round(process.memory_info().rss / MB, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
            "threads": process.num_threads()}


def conversation(server: common.Server, clips: list[common.Clip], number: int, turns: int) -> int:
    """One conversation: `turns` spoken and `turns` typed turns; the turns answered."""
    api = common.Api(server.url, server.headers)
    conversation_id = api.create()
    for j in range(turns):
        api.send_audio(conversation_id, clips[(number + j) % len(clips)].wav)
        api.send_text(conversation_id, common.QUESTIONS[(number + j) % len(common.QUESTIONS)])
    api.close()
    return 2 * turns


def model_size_mb() -> float | None:
    path = common.ROOT / "models" / "whisper-base" / "model.bin"
    return round(path.stat().st_size / MB, 1) if path.exists() else None


def markdown(head: dict, info: dict, stages: dict, conversations: int, per_conversation: float,
             model_mb: float | None) -> str:
    rows = [[stage, f"{m['conversations']}", f"{m['rss_mb']:.0f} MB", f"{m['peak_rss_mb']:.0f} MB"]
            for stage, m in stages.items()]
    growth = (f"Growth per conversation from {conversations} to {2 * conversations}: {per_conversation:.2f} MB"
              + (f" (the Whisper model file: {model_mb:.0f} MB)." if model_mb else "."))
    return "\n".join([f"Memory of the app's process: {info.get('recognizer')}, {info.get('chat')}, {info.get('tts')}, "
                      f"{info.get('store')}. {common.header_line(head)}", "",
                      common.table(["after", "conversations", "RSS", "peak RSS"], rows), "", growth])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "4 conversations of 1 spoken + 1 typed turn, 2 clients", NAME)
    parser.add_argument("--conversations", type=int, help="conversations in the first batch, then as many again "
                                                          "(default 40; quick 4)")
    parser.add_argument("--turns", type=int, help="spoken (and as many typed) turns each (default 3; quick 1)")
    parser.add_argument("--clients", type=int, help="clients at once for the other conversations (default 8; quick 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)
    conversations = args.conversations or (4 if args.quick else 40)
    turns = args.turns or (1 if args.quick else 3)
    clients = args.clients or (2 if args.quick else 8)
    clips = [c for c in common.load_clips(2 if args.quick else 10, 0 if args.quick else 4) if c.duration_s <= 6.0]
    with common.app_server() as server:
        api = common.Api(server.url, server.headers)
        info = api.info()
        api.close()
        stages = {"start (model loaded, warmed up)": {"conversations": 0, **process_memory(server.pid)}}
        answered = conversation(server, clips, 0, turns)
        stages["1 conversation"] = {"conversations": 1, **process_memory(server.pid)}
        for first, last in ((1, conversations), (conversations, 2 * conversations)):
            with ThreadPoolExecutor(clients) as pool:
                answered += sum(pool.map(lambda n: conversation(server, clips, n, turns), range(first, last)))
            stages[f"{last} conversations"] = {"conversations": last, **process_memory(server.pid)}
            common.logger.info("%s", stages)
    many, twice = stages[f"{conversations} conversations"]["rss_mb"], stages[f"{2 * conversations} conversations"]["rss_mb"]
    per_conversation = (twice - many) / conversations
    text = markdown(head, info, stages, conversations, per_conversation, model_size_mb())
    common.finish(NAME, args, head, {
        "server": {"info": info}, "conversations": conversations, "turns_each": 2 * turns, "clients": clients,
        "turns_answered": answered, "stages": stages, "growth_per_conversation_mb": per_conversation,
        "model_file_mb": model_size_mb(), "markdown": text})
    return stages


if __name__ == "__main__":
    main()
