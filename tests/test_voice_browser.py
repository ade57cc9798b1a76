"""The browser's own voice in a real browser: Debian's Chromium against the real `python app.py` on
loopback, its chat and speech engines a FAKE OpenAI-compatible server (OpenAI cannot be reached
here; the fake counts every speech request). Headless Chromium has no voices, so a stand-in
`speechSynthesis` (tests/speech_standin.py) is installed before the page loads: it speaks with
realistic durations and records each utterance. The page must speak each answer sentence by
sentence, in order, never two at once, with a local Korean voice, while the server synthesizes
nothing; without a Korean voice it plays the server's audio as before."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.fake_openai import FakeOpenAI
from tests.speech_standin import ENGLISH, LOCAL_KOREAN, NETWORK_KOREAN, script
from tests.test_handsfree_browser import QUESTIONS, WAIT_MS, hands_free_on, microphone, wait_for_answers
from tests.test_ui_browser import (TURN_TIMEOUT_MS, bubbles, conversation, launch_chromium,  # noqa: F401
                                   live_page, playwright, wait_for_turn, wav_seconds)
from voiceqna.service import INTERRUPTED_MARK
from voiceqna.textnorm import spoken

pytestmark = pytest.mark.browser

SENTENCES = ("KTX는 매일 아침 3시에 서울역에서 출발해요.", "표는 한 장에 5000원이고 역에서 바로 살 수 있어요.",
             "부산까지는 2시간 30분쯤 걸리니까 편하게 다녀오세요.")
QUESTION = "부산 가는 기차 알려 줘"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(answer=" ".join(SENTENCES), first_token_s=0.3, tokens_per_s=30)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def voice_url(tmp_path_factory, fake) -> Iterator[str]:
    """The page; chat and speech: the FAKE OpenAI-compatible server (speech: a tone per sentence)."""
    with live_page(tmp_path_factory.mktemp("voice") / "data", chat_engine="openai", tts_engine="openai",
                   openai_api_key="sk-test", openai_base_url=fake.base_url, handsfree_barge_in="1") as url:
        yield url


@pytest.fixture
def open_voice_page(playwright, tmp_path):
    """open(url, voices, microphone=None, **standin) -> the page, the stand-in voice installed first."""
    contexts = []

    def open_(url: str, voices: list[dict], microphone: Path | None = None, **standin):
        context = launch_chromium(playwright, tmp_path, microphone)
        contexts.append(context)
        context.add_init_script(script(voices, **standin))
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(TURN_TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#engines li")
        page.wait_for_function("n => window.voiceqnaSpeech && window.__speech.voices.length === n", arg=len(voices))
        return page

    yield open_
    for context in contexts:
        context.close()


def speech_requests(fake: FakeOpenAI) -> int:
    return sum(r["path"].endswith("/audio/speech") for r in fake.requests)


def ask(page, text: str = QUESTION) -> None:
    page.fill("#question-text textarea", text)
    page.keyboard.press("Enter")


def spoken_log(page) -> list[dict]:
    """Every utterance the stand-in was given, with when it started and ended."""
    return page.evaluate("window.__speech.log.map(({utterance, timer, ...e}) => e)")


def wait_until_spoken(page, count: int) -> list[dict]:
    page.wait_for_function("n => window.__speech.log.filter(e => e.how === 'end').length >= n"
                           " && window.voiceqnaPlayer.over()", arg=count)
    return spoken_log(page)


def assert_one_at_a_time(log: list[dict]) -> None:
    started = [e for e in log if e["started"] is not None]
    for before, after in zip(started, started[1:]):
        assert after["started"] >= before["ended"], (before, after)


def conversation_id(page) -> str:
    return page.input_value("#conversation-id input, #conversation-id textarea")


def test_a_local_korean_voice_speaks_each_sentence_in_order_and_the_server_synthesizes_nothing_fake_openai_server(
        open_voice_page, voice_url, fake):
    page = open_voice_page(voice_url, [ENGLISH, LOCAL_KOREAN])
    panel = page.inner_text("#voice")
    assert "음성" in panel and page.input_value("#voice select.voice-mode") == "browser"
    assert page.input_value("#voice select.voice-name") == LOCAL_KOREAN["voiceURI"]
    assert "🌐" not in page.inner_text("#voice .voice-note")  # nothing leaves the machine
    before = speech_requests(fake)

    ask(page)
    assert "✅" in wait_for_turn(page)
    log = wait_until_spoken(page, len(SENTENCES))

    # One utterance per sentence, in order, read the Korean way, ko-KR, the local voice, never two at once.
    assert [e["text"] for e in log] == [spoken(s) for s in SENTENCES]
    assert "케이티엑스" in log[0]["text"] and "오천 원" in log[1]["text"]
    assert all(e["lang"] == "ko-KR" and e["voice"] == "Yuna" and e["how"] == "end" for e in log)
    assert_one_at_a_time(log)
    # The first sentence was heard before the answer was done being written.
    player = page.evaluate("window.voiceqnaPlayer.log")
    assert [c["spoken"] for c in player["clips"]] == [spoken(s) for s in SENTENCES]
    assert player["clips"][0]["start"] < player["clips"][-1]["arrived"]
    assert all(c["start"] is not None and c["end"] >= c["start"] for c in player["clips"])
    # The bubble shows the text as written; the server made no speech and stored no audio.
    assert bubbles(page, "bot") == [" ".join(SENTENCES)]
    assert speech_requests(fake) == before
    stored = conversation(voice_url, conversation_id(page))
    assert [(m["message"], m["audio"]) for m in stored] == [(QUESTION, ""), (" ".join(SENTENCES), "")]

    # The bubble has no audio: its replay control speaks it again with the browser voice.
    page.click("#chat .message.bot .voice-replay")
    log = wait_until_spoken(page, 2 * len(SENTENCES))
    assert [e["text"] for e in log[len(SENTENCES):]] == [spoken(s) for s in SENTENCES]
    assert speech_requests(fake) == before


def test_the_choice_is_kept_and_server_voice_plays_the_servers_audio_fake_openai_server(open_voice_page, voice_url,
                                                                                         fake):
    page = open_voice_page(voice_url, [LOCAL_KOREAN])
    page.fill("#voice input.voice-rate", "1.5")
    page.select_option("#voice select.voice-mode", "server")
    page.reload()
    page.wait_for_function("() => window.__speech.voices.length === 1")
    assert page.input_value("#voice select.voice-mode") == "server"
    assert page.input_value("#voice input.voice-rate") == "1.5"
    before = speech_requests(fake)

    ask(page)
    assert "✅" in wait_for_turn(page)
    page.wait_for_function("() => window.voiceqnaPlayer.over() && window.voiceqnaPlayer.log.clips.length === 3")
    assert spoken_log(page) == []  # the browser said nothing
    assert speech_requests(fake) - before == len(SENTENCES)
    assert base64.b64decode(conversation(voice_url, conversation_id(page))[1]["audio"])[:4] == b"RIFF"


def test_a_network_voice_is_not_chosen_by_default_but_can_be_picked_with_a_note_fake_openai_server(
        open_voice_page, voice_url, fake):
    page = open_voice_page(voice_url, [NETWORK_KOREAN])
    assert page.input_value("#voice select.voice-mode") == "server"
    page.select_option("#voice select.voice-mode", "browser")
    assert "pick a network voice" in page.inner_text("#voice .voice-note")
    assert page.evaluate("window.voiceqnaSpeech.effective()") == "server"  # not used until picked
    page.select_option("#voice select.voice-name", NETWORK_KOREAN["voiceURI"])
    assert "🌐" in page.inner_text("#voice .voice-note") and "vendor" in page.inner_text("#voice .voice-note")
    before = speech_requests(fake)

    ask(page)
    assert "✅" in wait_for_turn(page)
    log = wait_until_spoken(page, len(SENTENCES))
    assert [e["voice"] for e in log] == [NETWORK_KOREAN["name"]] * len(SENTENCES)
    assert speech_requests(fake) == before


def test_without_a_korean_voice_the_page_plays_the_servers_audio_as_before_fake_openai_server(open_voice_page,
                                                                                           voice_url, fake):
    page = open_voice_page(voice_url, [ENGLISH])
    assert page.input_value("#voice select.voice-mode") == "server"
    before = speech_requests(fake)
    ask(page)
    assert "✅" in wait_for_turn(page)
    page.wait_for_function("() => window.voiceqnaPlayer.over() && window.voiceqnaPlayer.log.clips.length === 3")
    assert spoken_log(page) == [] and speech_requests(fake) - before == len(SENTENCES)
    assert all(c["url"] for c in page.evaluate("window.voiceqnaPlayer.log.clips"))


def test_stop_cancels_the_speech_at_once_and_the_answer_is_stored_whole_fake_openai_server(open_voice_page, voice_url):
    page = open_voice_page(voice_url, [LOCAL_KOREAN])
    ask(page)
    page.wait_for_function("() => window.voiceqnaPlayer.played() === 1")
    page.click("#answer-player .answer-player-stop")

    assert page.evaluate("window.speechSynthesis.speaking || window.speechSynthesis.pending") is False
    assert "✅" in wait_for_turn(page)
    log = spoken_log(page)
    assert log[0]["how"] == "interrupted" and len(log) == 1  # nothing more was said
    assert page.evaluate("window.voiceqnaPlayer.played()") == 1
    assert page.get_attribute("#answer-player [data-state]", "data-state") == "stopped"
    assert conversation(voice_url, conversation_id(page))[1]["message"] == " ".join(SENTENCES)  # typed: whole
    page.wait_for_function("() => window.voiceqnaPlayer.over()")  # hands-free would report it heard now


def test_an_utterance_that_fails_is_skipped_and_a_paused_queue_is_resumed_fake_openai_server(open_voice_page,
                                                                                            voice_url):
    page = open_voice_page(voice_url, [LOCAL_KOREAN], fail="오천 원", pause_once=True)
    ask(page)
    assert "✅" in wait_for_turn(page)
    page.wait_for_function("() => window.voiceqnaPlayer.over() && window.__speech.log.length === 3")
    log = spoken_log(page)
    assert [e["how"] for e in log] == ["end", "synthesis-failed", "end"]  # tried once, never again
    assert page.evaluate("window.voiceqnaPlayer.log.clips.map(c => c.skipped)") == [False, True, False]


def test_a_long_sentence_is_said_in_parts_split_at_commas_fake_openai_server(open_voice_page, voice_url, fake):
    long = ("서울에서 부산까지 가는 방법은 여러 가지가 있는데, 가장 빠른 것은 고속 열차이고, 그 다음은 비행기이며, "
            "버스는 조금 느리지만 값이 싸고, 자동차로 가면 중간에 휴게소에 들러 맛있는 것을 먹을 수 있어요.")
    fake.answer = long
    try:
        page = open_voice_page(voice_url, [LOCAL_KOREAN], ms_per_syllable=20)
        ask(page)
        assert "✅" in wait_for_turn(page)
        page.wait_for_function("() => window.voiceqnaPlayer.over() && window.__speech.log.length >= 2")
        log = spoken_log(page)
    finally:
        fake.answer = " ".join(SENTENCES)
    assert len(log) >= 2 and all(len(e["text"]) <= 80 for e in log)
    assert " ".join(e["text"] for e in log) == spoken(long)
    assert all(e["text"].endswith((",", ".")) for e in log)
    assert page.evaluate("window.voiceqnaPlayer.log.clips.length") == 1


# --- spoken turns: push-to-talk, and hands-free with barge-in ---


def test_a_recorded_question_is_answered_in_the_browser_voice_fake_openai_server(open_voice_page, voice_url, fake,
                                                                               read_speech):
    clip = next(c for c in read_speech if c.path.name == QUESTIONS[0])
    page = open_voice_page(voice_url, [LOCAL_KOREAN], microphone=clip.path)
    before = speech_requests(fake)
    page.click("#question-audio button.record-button")
    time.sleep(wav_seconds(clip.path.read_bytes()) + 1.0)
    page.click("#question-audio button.stop-button")
    assert "✅" in wait_for_turn(page)
    log = wait_until_spoken(page, len(SENTENCES))
    assert [e["text"] for e in log] == [spoken(s) for s in SENTENCES]
    assert_one_at_a_time(log)
    assert speech_requests(fake) == before
    assert conversation(voice_url, conversation_id(page))[1]["audio"] == ""


def test_hands_free_listens_again_after_the_last_utterance_and_barge_in_cancels_it_fake_openai_server(
        open_voice_page, voice_url, fake, read_speech, tmp_path):
    by_name = {c.path.name: c for c in read_speech}
    questions = [by_name[name] for name in QUESTIONS]
    wav = microphone(tmp_path / "two-questions.wav", questions, [3.0], lead_s=1.0, tail_s=12.0)
    page = open_voice_page(voice_url, [LOCAL_KOREAN], microphone=wav)
    before = speech_requests(fake)
    hands_free_on(page)
    wait_for_answers(page, 2)
    page.wait_for_function("() => window.voiceqnaPlayer.over()", timeout=WAIT_MS)
    page.wait_for_timeout(1000)  # a few more pieces of audio after the last utterance

    log = spoken_log(page)
    assert_one_at_a_time(log)
    assert speech_requests(fake) == before  # the server spoke nothing
    stored = conversation(voice_url, conversation_id(page))
    assert [m["role"] for m in stored] == ["user", "assistant"] * 2 and all(m["audio"] == "" for m in stored[1::2])
    # The second question came while the first answer was being said: it was cut off there.
    barge = page.evaluate("window.voiceqnaHandsFree.log.barge")
    assert barge, "the second question did not interrupt the first answer"
    played = barge[0]["played"]
    assert 1 <= played < len(SENTENCES)
    assert stored[1]["message"] == " ".join(SENTENCES[:played]) + INTERRUPTED_MARK
    assert [e["how"] for e in log[:played]] == ["end"] * (played - 1) + ["interrupted"]
    # The second answer was said whole, and the microphone counted as "answer playing" until its
    # last utterance ended: half-duplex, the page listens again only after the last `end`.
    last = log[-len(SENTENCES):]
    assert [e["text"] for e in last] == [spoken(s) for s in SENTENCES] and all(e["how"] == "end" for e in last)
    assert stored[3]["message"] == " ".join(SENTENCES)
    posts = page.evaluate("window.voiceqnaHandsFree.log.posts.map(p => ({at: p.at, playing: p.playing}))")
    during = [p for p in posts if last[0]["started"] + 150 < p["at"] < last[-1]["ended"] - 50]
    after = [p for p in posts if p["at"] > last[-1]["ended"] + 600]
    assert during and all(p["playing"] for p in during)
    assert after and not any(p["playing"] for p in after)
