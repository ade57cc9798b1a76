"""Hands-free in a real browser: Debian's Chromium, its fake microphone fed one WAV made of real
Korean recordings with their own room noise between them, against the real `python app.py` on
loopback. The page is switched to hands-free and nothing else is touched: every turn is found
by the page's script and the server's endpointer (Silero VAD), answered by the offline engines
and played by the page's audio queue. No timed assertions: only generous waits."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_ui_browser import (FAR_HOST, bubbles, conversation, live_page, open_page,  # noqa: F401 (fixtures)
                                   playwright)
from tests.tiers import tier
from voiceqna.audio import decode, encode_wav
from voiceqna.config import PROJECT_ROOT
from voiceqna.evaluation import streams
from voiceqna.evaluation.metrics import char_errors
from voiceqna.service import INTERRUPTED_MARK

pytestmark = pytest.mark.browser

QUESTIONS = ["sub100100a00000.wav", "sub100102a00011.wav"]
"""저 식당 음식이 정말 맛있나 봐요. / 공부와 일을 같이 하려면 힘들겠어요."""
WAIT_MS = 180_000


@pytest.fixture(scope="module")
def questions(read_speech) -> list:
    by_name = {c.path.name: c for c in read_speech}
    return [by_name[name] for name in QUESTIONS]


def microphone(path: Path, clips: list, pauses_s: list[float], lead_s: float = 1.0, tail_s: float = 3.0) -> Path:
    """A WAV for the fake microphone: the clips' speech, `pauses_s` of room noise between them."""
    recordings = [streams.Recording.of(decode(c.path.read_bytes())) for c in clips]
    path.write_bytes(encode_wav(streams.join(recordings, pauses_s, lead_s=lead_s, tail_s=tail_s).audio))
    return path


def hands_free_on(page) -> None:
    page.click("#handsfree input.handsfree-on")
    page.wait_for_function("() => window.voiceqnaHandsFree && window.voiceqnaHandsFree.token")


def wait_for_answers(page, count: int) -> None:
    """Until `count` turns are answered and shown to their end (the status says ✅)."""
    page.wait_for_function(
        "n => document.querySelectorAll('#chat .message.bot').length >= n"
        " && window.voiceqnaHandsFree.log.turns.filter(t => t.shown !== null).length >= n"
        " && document.querySelector('#status').innerText.includes('✅')",
        arg=count, timeout=WAIT_MS,
    )


def conversation_id(page) -> str:
    return page.input_value("#conversation-id input, #conversation-id textarea")


@pytest.fixture(scope="module")
@tier("server")
def barge_in_page_url(tmp_path_factory):
    """The page with HANDSFREE_BARGE_IN=1: the second question, asked while the first answer
    plays, interrupts it (in half-duplex, the default, it would not be heard)."""
    with live_page(tmp_path_factory.mktemp("handsfree") / "data", handsfree_barge_in="1") as url:
        yield url


def test_two_spoken_questions_are_answered_in_order_hands_free(open_page, barge_in_page_url, questions, tmp_path):
    # 1 s of silence, question 1, 2.5 s, question 2, 3 s: the recording.
    wav = microphone(tmp_path / "two-questions.wav", questions, [2.5], lead_s=1.0, tail_s=3.0)
    page = open_page(barge_in_page_url, microphone=wav)
    assert page.is_checked("#handsfree input.handsfree-barge-in")
    assert re.search("핸즈프리", page.inner_text("#handsfree")) and "hands-free" in page.inner_text("#handsfree")

    hands_free_on(page)
    page.wait_for_function("() => document.querySelector('#handsfree .handsfree-state').innerText.includes('듣는 중')")
    wait_for_answers(page, 2)

    said, answers = bubbles(page, "user"), bubbles(page, "bot")
    assert len(said) == 2 and len(answers) == 2, (said, answers)
    for clip, text in zip(questions, said):
        assert char_errors(clip.text, text).rate <= 0.3, (clip.text, text)
    stored = conversation(barge_in_page_url, conversation_id(page))
    assert [m["role"] for m in stored] == ["user", "assistant"] * 2
    assert [m["message"] for m in stored[0::2]] == said
    assert all(m["message"] and m["audio"] for m in stored[1::2])
    # The second question came while the first answer played: it was cut short where it was heard.
    barge = page.evaluate("window.voiceqnaHandsFree.log.barge")
    if barge:
        assert stored[1]["message"].endswith(INTERRUPTED_MARK)
    assert not stored[3]["message"].endswith(INTERRUPTED_MARK)
    assert page.is_checked("#handsfree input.handsfree-on")  # still listening
    page.wait_for_function("() => document.querySelector('#handsfree .handsfree-state').innerText.includes('듣는 중')")


def test_two_tabs_over_ssl_are_two_conversations_and_closing_them_frees_their_sessions(
        open_page, https_page, questions, tmp_path):
    """`python app.py --ssl` opened from another machine on the LAN: no TURN, no other server."""
    url, data_dir, certificate = https_page
    far = url.replace("127.0.0.1", FAR_HOST)
    pages = []
    for i, clip in enumerate(questions):
        page = open_page(far, microphone=microphone(tmp_path / f"tab-{i}.wav", [clip], [], tail_s=3.0))
        assert page.evaluate("window.isSecureContext")
        hands_free_on(page)
        pages.append(page)
    for page in pages:
        wait_for_answers(page, 1)

    ids = [conversation_id(page) for page in pages]
    assert len(set(ids)) == 2
    for page, clip, cid in zip(pages, questions, ids):
        [said] = bubbles(page, "user")
        assert char_errors(clip.text, said).rate <= 0.3, (clip.text, said)
        stored = conversation(url, cid, verify=certificate)
        assert [(m["role"], m["message"]) for m in stored][:1] == [("user", said)] and len(stored) == 2
        assert not stored[1]["message"].endswith(INTERRUPTED_MARK)  # half-duplex: heard whole

    log = data_dir.parent / f"server-{url.rsplit(':', 1)[1]}.log"
    opened = log.read_text(errors="replace").count("Hands-free session opened")
    assert opened == 2
    for page in pages:
        page.close()  # the tab's beacon ends its session; else Gradio sees the tab go (heartbeat)
    _wait_for_log(log, "(0 open)")
    assert "Hands-free session idle" not in log.read_text(errors="replace")  # not the 60 s janitor


def _wait_for_log(log: Path, line: str, timeout_s: float = 50.0) -> None:
    """Until the server's log has `line` (sooner than the idle janitor's 60 s would end them)."""
    deadline = time.monotonic() + timeout_s
    while line not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            pytest.fail(f"the server never logged {line!r}:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.5)


@pytest.mark.bench
def test_the_benchmark_measures_every_figure_in_its_quick_mode(tmp_path, questions):
    """benchmarks/handsfree.py --quick: 2 questions (end of turn, voice to voice) and 2 cut cases."""
    out = tmp_path / "handsfree.json"
    run = subprocess.run([sys.executable, "benchmarks/handsfree.py", "--quick", "--json", str(out)],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["benchmark"] == "handsfree" and result["quick"] is True and result["commit"]
    assert result["command"] == f"python benchmarks/handsfree.py --quick --json {out}"
    assert len(result["load_average"]["start"]) == 3 and len(result["load_average"]["end"]) == 3
    assert "| --- |" in run.stdout and result["markdown"] == importlib.import_module("benchmarks.handsfree").markdown(result, result)
    latency = result["latency"]
    assert latency["questions_not_one_turn"] == 0, latency["per_question"]
    for figure in ("end_of_turn_s", "voice_to_voice_s"):
        assert latency[figure]["n"] == 2 and 0 < latency[figure]["p50"] <= latency[figure]["max"]
    assert latency["end_of_turn_s"]["p50"] < latency["voice_to_voice_s"]["p50"]
    cuts = result["cuts"]
    assert cuts["cases"] == 2 and [c["pause_s"] for c in cuts["per_case"]] == [0.3, 2.0]
    assert cuts["wrong_cuts"] == 0, cuts["per_case"]
