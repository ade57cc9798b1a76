"""In the browser: from asking (Enter, or the Stop click of a recording) to the first sentence of
the answer being heard, with the server's voice and with the browser's own voice, same server,
same run; and the server's CPU time per turn with each.

    python benchmarks/page_first_audio.py                 # writes benchmarks/results/page-first-audio.json
    python benchmarks/page_first_audio.py --turns 3 --no-spoken
    python benchmarks/page_first_audio.py --quick     # 1 turn per voice and question: page-first-audio-quick.json

The voices (the page's 🔊 음성 choice, voiceqna/page/voice.py): `server`, the server's speech
engine (espeak-ng) speaking each sentence, its WAV played by the page's audio queue
(assets/player.js) as soon as it is spoken; `browser`, the browser's Korean voice (Web Speech
API, assets/speech.js) saying each sentence as soon as it is written, the server speaking
nothing. Headless Chromium has no voices, so the browser-voice page gets a stand-in local Korean
voice (tests/speech_standin.py: `start` ~40 ms after `speak()`, ~8 syllables a second), the
server-voice page none (the page then chooses the server's voice, as it does for a browser
without a Korean voice).

One server process (this script with --serve) runs the real service — Whisper base, espeak-ng,
SQLite — behind the page. Its chat engine is a FAKE OpenAI-compatible server
(tests/fake_openai.py; OpenAI cannot be reached here) streaming at a realistic pace: first token
after 0.4 s, then 15 tokens a second of 2 characters, answers of three Korean sentences of
25-35 syllables (six answers in turn; espeak-ng's answer cache is off, so every server-voice
turn synthesizes its sentences). Debian's Chromium (Playwright) asks; turns
alternate between the two pages, round after round, so the load of this shared machine falls on
both alike; each turn waits for its answer to be heard to its end before the next starts.

Measured in the page (performance.now()): asked = the Enter keydown or the Stop click; first
heard = the queue's "voiceqna-playing" (server voice: its first sentence starts on the audio
clock; browser voice: the `start` event of the first utterance). Server CPU = user + system
time of the server process and its children (espeak-ng) from asking to the answer's end
(/proc/PID/stat), for typed turns (a spoken turn adds Whisper, the same in both).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common
from voiceqna.config import PROJECT_ROOT

logger = logging.getLogger("page_first_audio")

SCRIPT = "page_first_audio"
"""benchmarks/page_first_audio.py: the results header's `benchmark`."""
NAME = "page-first-audio"
"""The results file: benchmarks/results/page-first-audio.json."""
CHROMIUM = "/usr/bin/chromium"
VOICES = ("server", "browser")
FIRST_TOKEN_S = 0.4
TOKENS_PER_S = 15.0
TURN_TIMEOUT_MS = 120_000
QUESTION_CLIP = "sub100100a00000.wav"
"""저 식당 음식이 정말 맛있나 봐요. — 2.7 s of real Korean read speech (../shared/data)."""
ANSWERS = (
    "서울은 대한민국의 수도이면서 인구가 가장 많은 큰 도시예요. 한강이 도시 한가운데를 흐르고 북한산과 남산이 둘러싸고 있어요. "
    "봄에는 벚꽃이 피고 가을에는 단풍이 아름다워서 여행하기 좋아요.",
    "부산은 우리나라에서 두 번째로 크고 바다가 아름다운 항구 도시예요. 해운대와 광안리 해수욕장에는 여름마다 사람들이 아주 많이 모여요. "
    "가을에는 국제 영화제가 열려서 세계 여러 나라 손님이 찾아와요.",
    "김치는 배추와 무에 고춧가루와 마늘을 넣어 발효시킨 음식이에요. 집집마다 김치를 담그는 방법이 달라서 맛도 조금씩 다르답니다. "
    "겨울이 오기 전에 온 가족이 함께 모여 김장을 하는 풍습이 있어요.",
    "제주도는 우리나라 남쪽 바다에 있는 가장 크고 아름다운 섬이에요. 한라산 꼭대기에는 백록담이라는 아름다운 호수가 있답니다. "
    "돌하르방과 귤밭과 푸른 바다를 보러 일 년 내내 여행객이 찾아와요.",
    "한글은 세종대왕이 백성을 위해 직접 만든 우리 고유의 글자예요. 자음과 모음을 모아서 쓰기 때문에 누구나 쉽게 배울 수 있어요. "
    "매년 시월 구일은 한글의 소중함을 기리는 뜻깊은 한글날이랍니다.",
    "경주는 천 년 동안 신라의 수도였던 아주 오래되고 역사 깊은 도시예요. 불국사와 석굴암은 유네스코 세계 문화유산으로 지정되어 있어요. "
    "밤에는 동궁과 월지의 불빛이 연못에 비쳐서 정말 아름다워요.",
)
# In every page: when the user asked, when the first sentence was heard, when the turn ended.
PROBE = """
window.__bench = {
  asked: null, playing: null, ended: null, working: false,
  reset() {
    Object.assign(this, {asked: null, playing: null, ended: null, working: false});
    if (this.observer) return;
    // The turn is over when the status line, having said it was working, says how it ended.
    const status = document.querySelector('#status');
    this.observer = new MutationObserver(() => {
      const text = status.innerText;
      if (/처리 중|답하는 중/.test(text)) this.working = true;
      else if (this.working && this.ended === null && /[✅⚠🔇]/u.test(text)) this.ended = performance.now();
    });
    this.observer.observe(status, {childList: true, subtree: true, characterData: true});
  },
};
document.addEventListener('voiceqna-playing', () => {  // the queue: a sentence starts (audio or utterance)
  if (window.__bench.asked !== null && window.__bench.playing === null) window.__bench.playing = performance.now();
}, true);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && e.target.closest && e.target.closest('#question-text')) window.__bench.asked = performance.now();
}, true);
document.addEventListener('click', (e) => {
  if (e.target.closest && e.target.closest('#question-audio .stop-button')) window.__bench.asked = performance.now();
}, true);
"""
PLAYBACK_OVER = "() => window.voiceqnaPlayer.over()"


# --- the server: this script with --serve ---


def serve(port: int, openai_url: str, data_dir: str) -> None:
    """The real service behind the page, at /page."""
    import gradio as gr
    import uvicorn
    from fastapi import FastAPI

    from voiceqna.compose import build_service
    from voiceqna.config import Settings
    from voiceqna.page import build_page, mount_options

    settings = Settings.from_env({"DATA_DIR": data_dir, "CHAT_ENGINE": "openai", "OPENAI_API_KEY": "fake",
                                  "OPENAI_BASE_URL": openai_url}, dotenv_path=None)
    service = build_service(settings)
    service.warm_up()
    uncached = getattr(service.synthesizer, "_synthesize", None)
    if uncached is not None:  # answers come round again: each server-voice turn pays for its speech, as a new one would
        service.synthesizer.synthesize = uncached
    root = FastAPI()
    gr.mount_gradio_app(root, build_page(service, settings), path="/page", **mount_options(settings))
    uvicorn.run(root, host="127.0.0.1", port=port, log_level="warning")


def start_server(openai_url: str, data_dir: Path) -> tuple[subprocess.Popen, str]:
    from tests.live_server import free_port

    port = free_port()
    log = open(data_dir.parent / "server.log", "wb")
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), openai_url, str(data_dir)],
                               cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/page/"
    import requests

    deadline = time.monotonic() + 300
    while True:
        try:
            if requests.get(url, timeout=5).ok:
                return process, url
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start: see {data_dir.parent / 'server.log'}")
        time.sleep(0.5)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (espeak-ng)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


# --- the browser ---


def open_page(playwright, url: str, voice: str, microphone: Path | None, profile: Path):
    from tests.speech_standin import LOCAL_KOREAN, script

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    if microphone:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=args, headless=True, locale="ko-KR",
        viewport={"width": 1280, "height": 900})
    context.add_init_script(PROBE)
    context.add_init_script(script([LOCAL_KOREAN] if voice == "browser" else []))
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(TURN_TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#engines li")
    page.wait_for_function("voice => window.voiceqnaSpeech && window.voiceqnaSpeech.effective() === voice"
                           " && document.querySelector('#voice-mode textarea, #voice-mode input').value === voice",
                           arg=voice)
    return context, page


def one_turn(page, voice: str, question: str, clip_s: float | None, server_pid: int) -> dict:
    """Ask once (typed when clip_s is None, else record clip_s seconds) and measure."""
    page.evaluate("window.__bench.reset()")
    cpu_before = cpu_s(server_pid)
    if clip_s is None:
        page.fill("#question-text textarea", question)
        page.keyboard.press("Enter")
    else:
        page.click("#question-audio button.record-button")
        time.sleep(clip_s + 0.7)
        page.click("#question-audio button.stop-button")
    page.wait_for_function("() => window.__bench.ended !== null")
    status = page.inner_text("#status")
    page.wait_for_function("() => window.__bench.playing !== null")
    page.wait_for_function(PLAYBACK_OVER)
    cpu = cpu_s(server_pid) - cpu_before
    bench = page.evaluate("({asked: window.__bench.asked, playing: window.__bench.playing})")
    log = page.evaluate("window.voiceqnaPlayer.log")
    clips = log["clips"]
    turn = {
        "answered": "✅" in status,
        "first_audio_ms": round(bench["playing"] - bench["asked"], 1),
        "server_cpu_ms": round(cpu * 1000, 1),
        "server_first_audio_ms": _timing(page, "첫 음성까지"),
        "server_tts_ms": _timing(page, "음성 합성"),
        "server_total_ms": _timing(page, "전체"),
        "sentences": len(clips),
        "heard": sum(c["start"] is not None for c in clips),
        "first_sentence_before_last_arrived": clips[0]["start"] < clips[-1]["arrived"],
    }
    if voice == "browser":
        said = page.evaluate("window.__speech.log.filter(e => e.started !== null).map(e => [e.started, e.ended])")
        turn["utterances"] = len(clips)
        turn["overlaps"] = sum(b[0] < a[1] for a, b in zip(said, said[1:]))
    else:
        turn["overlaps"] = sum(b["at"] < a["until"] - 1e-6 for a, b in zip(clips, clips[1:]))
    return turn


def _timing(page, label: str) -> float | None:
    """A row of the page's timings table, in ms (the server's own measure of this turn)."""
    match = re.search(rf"{label}[^\n\t]*[\t ]+([\d.]+) (m?s)", page.inner_text("#timings"))
    if not match:
        return None
    return float(match.group(1)) * (1 if match.group(2) == "ms" else 1000)


def summary(turns: list[dict]) -> dict:
    firsts = sorted(t["first_audio_ms"] for t in turns)
    return {
        "turns": len(turns),
        "answered": sum(t["answered"] for t in turns),
        "first_audio_p50_ms": round(statistics.median(firsts), 1),
        "first_audio_p95_ms": round(firsts[min(len(firsts) - 1, round(0.95 * (len(firsts) - 1)))], 1),
        "first_audio_ms": [t["first_audio_ms"] for t in turns],
        "server_cpu_p50_ms": _median([t["server_cpu_ms"] for t in turns]),
        "server_first_audio_p50_ms": _median([t["server_first_audio_ms"] for t in turns]),
        "server_tts_p50_ms": _median([t["server_tts_ms"] for t in turns]),
        "server_total_p50_ms": _median([t["server_total_ms"] for t in turns]),
        "heard_whole": sum(t["heard"] == t["sentences"] for t in turns),
        "overlaps": sum(t["overlaps"] for t in turns),
    }


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def run(turns: int, spoken: bool) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.fake_openai import FakeOpenAI
    from voiceqna.evaluation.clips import READ_SPEECH, seconds

    fake = FakeOpenAI(answer=ANSWERS[0], first_token_s=FIRST_TOKEN_S, tokens_per_s=TOKENS_PER_S)
    work = Path(tempfile.mkdtemp(prefix="page-first-audio-"))
    process, url = start_server(fake.base_url, work / "data")
    modes = {"typed": None}
    if spoken:
        modes["spoken"] = READ_SPEECH / QUESTION_CLIP
    results: dict = {}
    answer_number = 0
    try:
        with sync_playwright() as playwright:
            for mode, microphone in modes.items():
                clip_s = seconds(microphone.read_bytes()) if microphone else None
                pages = {v: open_page(playwright, url, v, microphone, work / f"profile-{mode}-{v}") for v in VOICES}
                measured: dict[str, list] = {v: [] for v in VOICES}
                for round_number in range(turns + 1):  # round 0 warms each page up and is not counted
                    order = VOICES if round_number % 2 else VOICES[::-1]
                    for voice in order:
                        fake.answer = ANSWERS[answer_number % len(ANSWERS)]
                        answer_number += 1
                        turn = one_turn(pages[voice][1], voice, "이 도시에 대해 알려 줘", clip_s, process.pid)
                        logger.info("%s %s round %d: %s", mode, voice, round_number, turn)
                        if round_number:
                            measured[voice].append(turn)
                for context, _ in pages.values():
                    context.close()
                results[mode] = {v: {**summary(t), "each": t} for v, t in measured.items()}
                server = results[mode]["server"]
                results[mode]["browser_to_server_p50"] = {
                    "first_audio": round(results[mode]["browser"]["first_audio_p50_ms"] / server["first_audio_p50_ms"], 3),
                    "server_cpu": round(results[mode]["browser"]["server_cpu_p50_ms"] / server["server_cpu_p50_ms"], 3),
                }
    finally:
        process.terminate()
        process.wait(timeout=30)
        fake.close()
    return results


def setup(turns: int) -> dict:
    """What was run: the browser, the fake chat model, speech, recognizer, turns, the metric."""
    browser = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "browser": f"{browser} (headless, Playwright)",
        "chat": f"FAKE OpenAI-compatible server (tests/fake_openai.py): first token {FIRST_TOKEN_S} s, "
                f"{TOKENS_PER_S:g} tokens/s of 2 characters, 3 sentences of 25-35 syllables",
        "speech": "server voice: espeak-ng (ko); browser voice: a stand-in local Korean voice "
                  "(tests/speech_standin.py: start ~40 ms after speak(), ~8 syllables/s)",
        "recognizer": "Whisper base (cpu, int8), the app's defaults",
        "turns_per_voice": turns,
        "metric": "asked (Enter keydown / Stop click) -> first sentence heard (queue's voiceqna-playing: audio "
                  "start / first utterance's start), in the page (ms); server CPU: user+system of the server "
                  "process and its children from asking to the answer's end",
    }


def markdown(head: dict, result: dict) -> str:
    """The printed summary: first sentence heard and server CPU per voice, typed and spoken."""
    turns = result["turns_per_voice"]
    rows = []
    for mode in ("typed", "spoken"):
        if mode not in result:
            continue
        for voice in VOICES:
            r = result[mode][voice]
            ratio = result[mode]["browser_to_server_p50"]
            rows.append([mode, voice, f"{r['answered']} of {r['turns']}", f"{r['first_audio_p50_ms']:.0f}",
                         f"{r['first_audio_p95_ms']:.0f}", "1.00" if voice == "server" else f"{ratio['first_audio']:.2f}",
                         common.fmt(r["server_cpu_p50_ms"], 0),
                         "1.00" if voice == "server" else f"{ratio['server_cpu']:.2f}",
                         common.fmt(r["server_tts_p50_ms"], 0), f"{r['heard_whole']} of {r['turns']}",
                         r["overlaps"]])
    return "\n".join([
        f"In the browser: asked → first sentence heard, and the server's CPU per turn, {turns} "
        f"turn{'s' if turns != 1 else ''} per voice and question; chat: {result['chat']}. {common.header_line(head)}",
        "",
        common.table(["question", "voice", "answered", "first heard p50 ms", "p95 ms", "p50 / server voice's",
                      "server CPU p50 ms", "CPU / server voice's", "server speech synthesis p50 ms", "heard whole",
                      "overlaps"], rows)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "1 measured turn per voice and question (unless --turns)", NAME)
    parser.add_argument("--turns", type=int, help="measured turns per voice and question (default 6; quick 1)")
    parser.add_argument("--no-spoken", action="store_true", help="typed turns only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 4 and argv[0] == "--serve":
        serve(int(argv[1]), argv[2], argv[3])
        return None
    args, head = common.start(SCRIPT, parse_args, argv)
    turns = args.turns or (1 if args.quick else 6)
    result = setup(turns)
    result.update(run(turns, not args.no_spoken))
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
