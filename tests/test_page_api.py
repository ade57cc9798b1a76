"""The page's public API as a Space user meets it: gradio_client against the real `python app.py`
on loopback (Whisper base, offline chat, espeak-ng, a SQLite file), behind API_KEY."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Iterator

import pytest
import requests
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError

from tests.live_server import running_app, store_rows
from tests.tiers import tier
from voiceqna.evaluation.clips import seconds
from voiceqna.evaluation import metrics

KEY = "page-key-51c7"
MAX_AUDIO_S = 4.0
PUBLIC = {"/ask_text", "/ask_audio", "/transcribe"}


def _page_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/health", headers={"X-API-Key": KEY}, timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
@tier("server")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The page and REST API with a key and a 4 s limit on recordings: (URL, data folder)."""
    data_dir = tmp_path_factory.mktemp("page-api") / "data"
    with running_app(data_dir, [], {"api_key": KEY, "max_audio_s": str(MAX_AUDIO_S)}, _page_answers) as url:
        yield url, data_dir


@pytest.fixture(scope="module")
def client(server, tmp_path_factory) -> Client:
    url, _ = server
    return Client(url, auth=("anyone", KEY), verbose=False, download_files=tmp_path_factory.mktemp("downloads"))


def stored(url: str, conversation_id: str) -> list[tuple[str, str]]:
    response = requests.get(f"{url}/api/{conversation_id}", headers={"X-API-Key": KEY}, timeout=30)
    response.raise_for_status()
    return [(m["role"], m["message"]) for m in response.json()]


def is_wav(path: str) -> bool:
    with wave.open(path, "rb") as clip:
        return clip.getnframes() > 0


def test_only_the_named_endpoints_are_public_and_take_plain_values(client):
    api = client.view_api(print_info=False, return_format="dict")

    assert set(api["named_endpoints"]) == PUBLIC and api["unnamed_endpoints"] == {}
    ask_audio = api["named_endpoints"]["/ask_audio"]
    assert [p["parameter_name"] for p in ask_audio["parameters"]] == ["audio", "conversation_id"]
    assert ask_audio["parameters"][1]["parameter_has_default"]
    assert [r["label"] for r in ask_audio["returns"]] == ["transcript", "answer", "answer_audio", "conversation_id"]
    assert [r["python_type"]["type"] for r in ask_audio["returns"]] == ["str", "str", "filepath", "str"]
    assert "voice" in ask_audio["description"]


def test_typed_question_gets_the_answer_and_continues_the_conversation(client, server):
    url, _ = server
    question, answer, audio, conversation_id = client.predict("한국의 수도는 어디야?", api_name="/ask_text")

    assert question == "한국의 수도는 어디야?" and "서울" in answer
    assert is_wav(audio) and seconds(Path(audio).read_bytes()) > 1.0
    assert stored(url, conversation_id) == [("user", question), ("assistant", answer)]

    *_, same_id = client.predict("고마워", conversation_id, api_name="/ask_text")
    assert same_id == conversation_id
    assert [text for _, text in stored(url, conversation_id)][::2] == ["한국의 수도는 어디야?", "고마워"]


def test_spoken_question_is_transcribed_answered_and_stored(client, server, read_speech):
    url, _ = server
    clip = next(c for c in read_speech if c.path.name == "sub100100a00000.wav")  # 2.7 s

    transcript, answer, audio, conversation_id = client.predict(handle_file(str(clip.path)), api_name="/ask_audio")

    assert metrics.cer([clip.text], [transcript]) <= 0.25, transcript
    assert answer and is_wav(audio)
    assert stored(url, conversation_id) == [("user", transcript), ("assistant", answer)]


def test_transcribe_returns_the_text_and_stores_nothing(client, server, read_speech):
    url, data_dir = server
    clip = next(c for c in read_speech if c.path.name == "sub100100a00000.wav")
    before = store_rows(data_dir)

    text = client.predict(handle_file(str(clip.path)), api_name="/transcribe")

    assert isinstance(text, str) and metrics.cer([clip.text], [text]) <= 0.25, text
    assert store_rows(data_dir) == before


def test_silence_is_answered_with_an_apology_and_not_stored(client, server, tmp_path):
    url, data_dir = server
    silence = tmp_path / "silence.wav"
    with wave.open(str(silence), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 32000)
    *_, conversation_id = client.predict("안녕하세요", api_name="/ask_text")

    transcript, answer, audio, same_id = client.predict(handle_file(str(silence)), conversation_id,
                                                        api_name="/ask_audio")

    assert (transcript, same_id) == ("", conversation_id)
    assert "듣지 못했어요" in answer and is_wav(audio)
    assert len(stored(url, conversation_id)) == 2


@pytest.mark.parametrize("call, expected", [
    (lambda c, wav, long: c.predict("   ", api_name="/ask_text"), "입력을 확인해 주세요"),
    (lambda c, wav, long: c.predict("안녕", "0123456789abcdef01234567", api_name="/ask_text"), "대화를 찾을 수 없어요"),
    (lambda c, wav, long: c.predict(handle_file(str(wav)), api_name="/transcribe"), "오디오 파일이 아니에요"),
    (lambda c, wav, long: c.predict(handle_file(str(long)), api_name="/ask_audio"), "너무 길거나"),
])
def test_bad_requests_get_the_message_that_says_the_fix_and_store_nothing(client, server, read_speech, tmp_path,
                                                                           call, expected):
    _, data_dir = server
    not_audio = tmp_path / "question.wav"
    not_audio.write_text("this is not audio\n" * 50)
    too_long = next(c.path for c in read_speech if seconds(c.path.read_bytes()) > MAX_AUDIO_S + 0.5)
    before = store_rows(data_dir)

    with pytest.raises(AppError) as error:
        call(client, not_audio, too_long)

    assert expected in str(error.value) and "Traceback" not in str(error.value)
    assert store_rows(data_dir)[1] == before[1]  # no message was written


def test_the_api_needs_the_key_like_the_page(server):
    url, data_dir = server
    before = store_rows(data_dir)
    with pytest.raises(AuthenticationError, match="login"):
        Client(url, verbose=False).predict("안녕", api_name="/ask_text")
    with pytest.raises(ValueError, match="Could not login"):
        Client(url, auth=("anyone", "wrong-key"), verbose=False).predict("안녕", api_name="/ask_text")
    assert store_rows(data_dir) == before
