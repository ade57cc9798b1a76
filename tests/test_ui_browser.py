"""The page in a real browser: Debian's Chromium driven by Playwright, its fake microphone fed
from a real Korean recording, against the real `python app.py` on loopback. The answer is heard
through the page's audio queue (assets/player.js), whose log says when each sentence played.

`lan.test` is mapped to 127.0.0.1 inside Chromium (--host-resolver-rules): to the browser it is
another machine on the LAN, so plain HTTP there is not a secure context and the microphone is
blocked, as it would be for a phone on the LAN, while the server still listens on loopback only.
"""

from __future__ import annotations

import base64
import io
import re
import tempfile
import time
import wave
from pathlib import Path
from typing import Iterator

import jiwer
import pytest
import requests

from tests.fake_openai import FakeOpenAI
from tests.live_server import live_page
from tests.tiers import tier
from voiceqna.config import PROJECT_ROOT
from voiceqna.textnorm import compact

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
OUTPUT = PROJECT_ROOT / "test-output"
START_TIMEOUT_S = 240.0
TURN_TIMEOUT_MS = 120_000
FAR_HOST = "lan.test"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    f"--host-resolver-rules=MAP {FAR_HOST} 127.0.0.1",
]

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (packages-dev.txt)", allow_module_level=True)


# --- the server: the real app.py, page and REST API, on a free loopback port ---


@pytest.fixture(scope="module")
@tier("server")
def page_url(tmp_path_factory) -> Iterator[str]:
    with live_page(tmp_path_factory.mktemp("page") / "data") as url:
        yield url


@pytest.fixture(scope="module")
def https_server(https_page) -> tuple[str, Path]:
    """`python app.py --ssl` (the session's, tests/conftest.py): its URL and the self-signed
    certificate it made in the data folder."""
    url, _, certificate = https_page
    return url, certificate


# --- the browser ---


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as driver:
        yield driver


def launch_chromium(playwright, tmp_path: Path, microphone: Path | None = None):
    """Chromium in a fresh profile (its fake microphone playing `microphone` once, if given)."""
    args = list(CHROMIUM_ARGS)
    if microphone is not None:
        # %noloop: without it Chromium replays the file for as long as the recording lasts.
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=tmp_path))
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=args, headless=True,
        ignore_https_errors=True, viewport={"width": 1280, "height": 900}, locale="ko-KR",
    )


@pytest.fixture
def open_page(playwright, tmp_path):
    """open_page(url, microphone=clip.wav) -> a Playwright page in a fresh Chromium profile."""
    contexts = []

    def open_(url: str, microphone: Path | None = None):
        context = launch_chromium(playwright, tmp_path, microphone)
        contexts.append(context)
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(TURN_TIMEOUT_MS)
        page.goto(url)
        page.wait_for_selector("#engines li")  # the page has loaded and asked the service
        return page

    yield open_
    for context in contexts:
        context.close()


def wait_for_turn(page) -> str:
    """Wait until the status line says how the turn ended; return it."""
    page.wait_for_function(
        "() => /[✅⚠️🔇]/u.test(document.querySelector('#status').innerText)"
        " && !document.querySelector('#status').innerText.includes('처리 중')"
    )
    return page.inner_text("#status")


def record(page, seconds: float) -> None:
    page.click("#question-audio button.record-button")
    time.sleep(seconds)
    page.click("#question-audio button.stop-button")


def bubbles(page, who: str) -> list[str]:
    """The text of each user or bot bubble (without the players' time stamps)."""
    return [
        "\n".join(part.inner_text().strip() for part in bubble.query_selector_all(".md"))
        for bubble in page.query_selector_all(f"#chat .message.{who}")
    ]


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as clip:
        return clip.getnframes() / clip.getframerate()


def pcm(data: bytes) -> bytes:
    with wave.open(io.BytesIO(data), "rb") as clip:
        return clip.readframes(clip.getnframes())


def played_turn(page) -> dict:
    """Wait until the page's audio queue has played the whole answer of the last turn; its log."""
    page.wait_for_function(
        "() => { const p = window.voiceqnaPlayer, log = p && p.log;"
        " return log && log.final && log.clips.length > 0 && p.sources.length === 0"
        " && log.clips.every(c => c.until !== null && c.until <= p.context.currentTime); }"
    )
    return page.evaluate("window.voiceqnaPlayer.log")


def assert_back_to_back(clips: list[dict]) -> None:
    """Sentences played in order, each after the one before had ended (on the audio clock)."""
    assert [c["index"] for c in clips] == list(range(len(clips)))
    for before, after in zip(clips, clips[1:]):
        assert after["at"] >= before["until"] - 1e-9, (before, after)


def conversation(url: str, conversation_id: str, verify: bool | Path = True) -> list[dict]:
    """The conversation as the REST API gives it (what is really stored)."""
    response = requests.get(f"{url}/api/{conversation_id}", timeout=30, verify=verify)
    response.raise_for_status()
    return response.json()


def spoken_turn(open_page, url: str, clip, browser_host="127.0.0.1", verify: bool | Path = True, screenshot="") -> None:
    """Record `clip` through the fake microphone and check everything a user would see and hear."""
    page = open_page(url.replace("127.0.0.1", browser_host), microphone=clip.path)
    served = []
    page.on("response", lambda r: served.append((r.url, r.status, r.headers.get("content-type")))
            if r.url.endswith(".wav") and "file=" in r.url else None)
    assert page.evaluate("window.isSecureContext")
    assert not page.is_visible("#mic-warning .mic-warning-box")

    record(page, wav_seconds(clip.path.read_bytes()) + 1.0)
    assert "✅" in wait_for_turn(page)

    # The transcript bubble says what the recording says; the answer bubble sits beside it.
    (said,), (answer,) = bubbles(page, "user"), bubbles(page, "bot")
    assert jiwer.cer(compact(clip.text), compact(said)) <= 0.25, (said, clip.text)
    conversation_id = page.input_value("#conversation-id input, #conversation-id textarea")
    stored = conversation(url, conversation_id, verify)
    assert [(m["role"], m["message"]) for m in stored] == [("user", said), ("assistant", answer)]

    # The answer is heard at once, sentence by sentence, back to back: exactly the stored answer.
    log = played_turn(page)
    assert_back_to_back(log["clips"])
    answer_wav = base64.b64decode(stored[1]["audio"])
    clips = [requests.get(c["url"].replace(browser_host, "127.0.0.1"), timeout=30, verify=verify).content
             for c in log["clips"]]
    assert b"".join(pcm(c) for c in clips) == pcm(answer_wav)
    assert wav_seconds(answer_wav) > 1.0
    assert all(kind == "audio/wav" for u, status, kind in served if "file=" in u and status in (200, 206)), served
    # Its bubble has a player that plays it again.
    player = page.query_selector("#chat .message.bot button.play-btn")
    idle_label = player.get_attribute("aria-label")
    player.click()
    page.wait_for_function("([b, idle]) => b.getAttribute('aria-label') !== idle", arg=[player, idle_label])

    timings = page.inner_text("#timings")  # each stage of this turn took a measured time
    for stage in ("오디오 변환 (decode)", "음성 인식 (Whisper)", "음성 합성 (TTS)", "전체 (total)",
                  "첫 음성까지 (to first audio)"):
        assert re.search(rf"{re.escape(stage)}\s+\d+(\.\d+)? m?s\b", timings), timings
    if screenshot:
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / screenshot), full_page=True)


@pytest.fixture
def question_clip(read_speech):
    """저 식당 음식이 정말 맛있나 봐요. — 2.7 s of real Korean read speech."""
    return next(c for c in read_speech if c.path.name == "sub100100a00000.wav")


def test_spoken_question_over_http(open_page, page_url, question_clip):
    spoken_turn(open_page, page_url, question_clip, screenshot="page-after-spoken-turn.png")


def test_spoken_question_over_https_from_another_machine(open_page, https_server, question_clip):
    """With --ssl, a LAN address is a secure context: the microphone works with the self-signed cert."""
    url, certificate = https_server
    spoken_turn(open_page, url, question_clip, browser_host=FAR_HOST, verify=certificate)


def test_silent_recording_says_nothing_was_heard(open_page, page_url, tmp_path):
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 16000 * 2)
    page = open_page(page_url, microphone=silence)

    record(page, 2.0)

    assert "들리지 않았어요" in wait_for_turn(page)
    assert bubbles(page, "user") == [] and bubbles(page, "bot") == []


def test_typed_question_is_answered_and_survives_a_reload(open_page, page_url):
    page = open_page(page_url)
    page.fill("#question-text textarea", "한국의 수도는 어디야?")
    page.keyboard.press("Enter")

    assert "✅" in wait_for_turn(page)
    assert bubbles(page, "user") == ["한국의 수도는 어디야?"]
    assert "서울" in bubbles(page, "bot")[0]
    assert page.input_value("#question-text textarea") == ""
    assert page.is_visible("#chat .message.bot button.play-btn")
    conversation_id = page.input_value("#conversation-id textarea, #conversation-id input")
    assert len(conversation_id) == 24

    page.reload()
    page.wait_for_selector("#chat .message.bot")
    assert bubbles(page, "user") == ["한국의 수도는 어디야?"]
    assert page.input_value("#conversation-id textarea, #conversation-id input") == conversation_id


def test_conversation_made_over_rest_opens_by_id_with_its_history(open_page, page_url, korean_wav):
    spoken = base64.b64encode(Path(korean_wav("반가워요")).read_bytes()).decode()
    made = requests.post(f"{page_url}/api/create", timeout=30, json={
        "messages": ["안녕", "반가워요"], "roles": ["user", "assistant"], "audios": ["", spoken],
    })
    assert made.status_code == 201
    page = open_page(page_url)

    page.fill("#conversation-id textarea, #conversation-id input", made.json()["id"])
    page.click("#open")

    page.wait_for_selector("#chat .message.bot")
    assert (bubbles(page, "user"), bubbles(page, "bot")) == (["안녕"], ["반가워요"])
    assert page.is_visible("#chat .message.bot button.play-btn")
    assert "열었어요" in page.inner_text("#status")


def test_unknown_id_and_new_conversation(open_page, page_url):
    page = open_page(page_url)
    page.fill("#conversation-id textarea, #conversation-id input", "0123456789abcdef01234567")
    page.click("#open")
    page.wait_for_selector(".toast-body")
    assert "대화를 찾을 수 없어요" in page.inner_text("#status")

    page.click("#new")
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('새 대화')")
    new_id = page.input_value("#conversation-id textarea, #conversation-id input")
    assert conversation(page_url, new_id) == []


def test_a_file_that_is_not_audio_gets_a_clear_message(open_page, page_url, tmp_path):
    not_audio = tmp_path / "question.wav"
    not_audio.write_text("this is not audio\n" * 50)
    page = open_page(page_url)
    page.click("#question-audio button[aria-label='Upload file']")

    page.set_input_files("#question-audio input[type=file]", str(not_audio))

    assert "오디오 파일이 아니에요" in wait_for_turn(page)
    assert "오디오 파일이 아니에요" in page.inner_text(".toast-body")
    assert bubbles(page, "user") == [] and "Traceback" not in page.content()


def test_uploaded_recording_is_answered(open_page, page_url, question_clip):
    page = open_page(page_url)
    page.click("#question-audio button[aria-label='Upload file']")

    page.set_input_files("#question-audio input[type=file]", str(question_clip.path))

    assert "✅" in wait_for_turn(page)
    assert compact(bubbles(page, "user")[0])[:4] == compact(question_clip.text)[:4]


def test_plain_http_from_another_machine_explains_the_microphone_fix(open_page, page_url):
    page = open_page(page_url.replace("127.0.0.1", FAR_HOST))

    assert not page.evaluate("window.isSecureContext")
    page.wait_for_selector("#mic-warning .mic-warning-box.visible")
    warning = page.inner_text("#mic-warning")
    assert "마이크" in warning and "--ssl" in warning
    port = page_url.rsplit(":", 1)[1]
    assert page.get_attribute("#mic-warning a.https-link", "href") == f"https://{FAR_HOST}:{port}/"
    assert f"http://localhost:{port}" in warning


def test_remote_mode_page_talks_to_the_api_server(open_page, api_url, tmp_path):
    """API_URL: this page runs no engines; the answer comes from the API server's process."""
    with live_page(tmp_path / "data", api_url=api_url) as url:
        page = open_page(url)
        assert "Whisper" in page.inner_text("#engines")
        page.fill("#question-text textarea", "한국의 수도는 어디야?")
        page.click("#send")
        assert "✅" in wait_for_turn(page)
        conversation_id = page.input_value("#conversation-id textarea, #conversation-id input")
    assert "서울" in requests.get(f"{api_url}/{conversation_id}", timeout=30).json()[1]["message"]
    assert not (tmp_path / "data" / "conversations.sqlite3").exists()



def test_the_footer_shows_the_pages_public_api(open_page, page_url):
    page = open_page(page_url)
    page.click("footer .show-api")
    page.wait_for_selector("text=/ask_audio")
    shown = page.inner_text("body")
    assert all(name in shown for name in ("/ask_text", "/ask_audio", "/transcribe"))
    assert "/busy" not in shown and "/idle" not in shown


# --- streaming: a chat engine that writes at a realistic pace ---

SENTENCES = ("서울은 대한민국의 수도이면서 인구가 가장 많은 큰 도시예요.", "한강이 도시 한가운데를 흐르고 북한산과 남산이 둘러싸고 있어요.",
             "봄에는 벚꽃이 피고 가을에는 단풍이 아름다워서 여행하기 좋아요.")
# When each sentence's text first shows in the newest answer bubble (performance.now() ms).
WATCH_WRITING = """(sentences) => {
  window.seen = {};
  new MutationObserver(() => {
    const bubbles = document.querySelectorAll('#chat .message.bot');
    const text = bubbles.length ? bubbles[bubbles.length - 1].innerText : '';
    sentences.forEach((s, i) => { if (!(i in window.seen) && text.includes(s)) window.seen[i] = performance.now(); });
  }).observe(document.querySelector('#chat'), {childList: true, subtree: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def streaming_page_url(tmp_path_factory) -> Iterator[str]:
    """The page whose chat engine is a FAKE OpenAI-compatible server (OpenAI cannot be reached
    here) writing three sentences at a realistic pace: first token after 0.4 s, 15 tokens a second."""
    fake = FakeOpenAI(answer=" ".join(SENTENCES), first_token_s=0.4, tokens_per_s=15)
    try:
        with live_page(tmp_path_factory.mktemp("page-streaming") / "data", chat_engine="openai",
                       openai_api_key="sk-test", openai_base_url=fake.base_url) as url:
            yield url
    finally:
        fake.close()


def test_answer_is_written_and_heard_sentence_by_sentence_fake_openai_server(open_page, streaming_page_url):
    page = open_page(streaming_page_url)
    page.evaluate(WATCH_WRITING, list(SENTENCES))
    page.fill("#question-text textarea", "서울에 대해 알려 줘")
    page.keyboard.press("Enter")

    assert "✅" in wait_for_turn(page)
    log = played_turn(page)
    seen = page.evaluate("window.seen")

    # The text appears sentence by sentence, and the first is heard before the last is written.
    assert seen["0"] < seen["1"] < seen["2"]
    assert log["clips"][0]["start"] < seen["2"]
    # Each sentence is heard once, in order, back to back (never two at once).
    assert len(log["clips"]) == len(SENTENCES) and not log["stopped"]
    assert_back_to_back(log["clips"])
    assert page.evaluate("window.voiceqnaPlayer.played()") == len(SENTENCES)
    # What was heard and shown is what was stored.
    conversation_id = page.input_value("#conversation-id textarea, #conversation-id input")
    stored = conversation(streaming_page_url, conversation_id)
    assert [m["message"] for m in stored] == ["서울에 대해 알려 줘", " ".join(SENTENCES)]
    assert bubbles(page, "bot") == [" ".join(SENTENCES)]
    clips = [requests.get(c["url"], timeout=30).content for c in log["clips"]]
    assert b"".join(pcm(c) for c in clips) == pcm(base64.b64decode(stored[1]["audio"]))
    timings = page.inner_text("#timings")
    for moment in ("첫 토큰까지 (to first token)", "첫 음성까지 (to first audio)"):
        assert re.search(rf"{re.escape(moment)}\s+\d+(\.\d+)? m?s\b", timings), timings


def test_stop_silences_the_answer_at_once_and_it_is_still_stored_whole_fake_openai_server(open_page,
                                                                                          streaming_page_url):
    page = open_page(streaming_page_url)
    page.fill("#question-text textarea", "서울에 대해 알려 줘")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.voiceqnaPlayer.played() === 1")  # the first sentence is playing

    page.click("#answer-player .answer-player-stop")

    assert page.evaluate("window.voiceqnaPlayer.sources.length") == 0
    assert "✅" in wait_for_turn(page)  # the answer goes on being written, and is not heard
    log = page.evaluate("window.voiceqnaPlayer.log")
    assert log["stopped"] and len(log["clips"]) == len(SENTENCES)
    assert page.evaluate("window.voiceqnaPlayer.played()") == 1
    assert page.get_attribute("#answer-player [data-state]", "data-state") == "stopped"
    conversation_id = page.input_value("#conversation-id textarea, #conversation-id input")
    assert conversation(streaming_page_url, conversation_id)[1]["message"] == " ".join(SENTENCES)
