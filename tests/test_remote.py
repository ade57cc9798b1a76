"""RemoteService against a live API server: the same interface, dataclasses and errors as ChatService."""

from __future__ import annotations

import inspect
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.live_server import API_KEY, free_port
from voiceqna.errors import (AudioTooLarge, BadAudio, EmptyAudio, EngineUnavailable, InvalidInput, NotFound, Unauthorized,
                             VoiceQnAError)
from voiceqna.page.audio_files import AudioFiles
from voiceqna.page.handlers import PageHandlers
from voiceqna.remote import RemoteService
from voiceqna.ports import EngineInfo, Message, TurnResult
from voiceqna.service import ChatService
from voiceqna.textnorm import compact

CLIP = "sub100100a00000.wav"  # 2.7 s: "저 식당 음식이 정말 맛있나 봐요."
EARLIER = [Message("user", "안녕", b"client bytes"), Message("assistant", "안녕하세요!")]


def after_turn(updates):
    """The page as a streamed turn leaves it: its last update."""
    return list(updates)[-1]


@pytest.fixture(scope="module")
def clip(read_speech):
    (found,) = [c for c in read_speech if c.path.name == CLIP]
    return found


def test_remote_round_trip_create_send_audio_get_reset(api_url, clip):
    remote = RemoteService(api_url)
    conversation_id = remote.create(EARLIER)
    assert remote.get(conversation_id) == EARLIER

    turn = remote.send_audio(conversation_id, clip.path.read_bytes())
    assert isinstance(turn, TurnResult) and turn.conversation_id == conversation_id
    assert compact(turn.transcript) == compact(clip.text)
    assert turn.text and turn.audio[:4] == b"RIFF" and turn.stored and turn.audio_error == ""
    assert turn.timings.asr_ms > 0 and turn.timings.total_ms >= turn.timings.asr_ms

    messages = remote.get(conversation_id)
    assert messages[:2] == EARLIER
    assert [(m.role, m.text) for m in messages[2:]] == [("user", turn.transcript), ("assistant", turn.text)]
    assert messages[2].audio[:4] == b"RIFF" and messages[3].audio == turn.audio

    remote.reset(conversation_id)
    assert remote.get(conversation_id) == []


def test_remote_send_text_and_info(api_url):
    remote = RemoteService(api_url + "/")
    conversation_id = remote.create()
    turn = remote.send_text(conversation_id, "이름이 뭐예요?")
    assert turn.transcript == "이름이 뭐예요?" and "챗봇" in turn.text and turn.audio[:4] == b"RIFF"
    assert [m.role for m in remote.get(conversation_id)] == ["user", "assistant"]
    info = remote.info
    assert isinstance(info, EngineInfo) and "Whisper" in info.recognizer and info.chat == "offline knowledge base"


@pytest.mark.parametrize("call, error", [
    (lambda r, cid: r.get("0123456789abcdef01234567"), NotFound),
    (lambda r, cid: r.reset("not-an-id/../create"), NotFound),
    (lambda r, cid: r.create([Message("robot", "hi")]), InvalidInput),
    (lambda r, cid: r.send_text(cid, "   "), InvalidInput),
    (lambda r, cid: r.send_audio(cid, b""), EmptyAudio),
    (lambda r, cid: r.send_audio(cid, b"not audio at all" * 20), BadAudio),
    (lambda r, cid: r.send_audio(cid, bytes(2 * 1024 * 1024)), AudioTooLarge),
])
def test_remote_raises_the_servers_error_types_and_loses_nothing(api_url, call, error):
    remote = RemoteService(api_url)
    conversation_id = remote.create(EARLIER)
    with pytest.raises(error) as raised:
        call(remote, conversation_id)
    assert len(str(raised.value)) > 10
    assert remote.get(conversation_id) == EARLIER


def test_remote_with_the_key_and_with_the_chat_engine_down(locked_api_url):
    with pytest.raises(Unauthorized, match="API_KEY"):
        RemoteService(locked_api_url).create()
    remote = RemoteService(locked_api_url, api_key=API_KEY)
    conversation_id = remote.create(EARLIER)
    with pytest.raises(EngineUnavailable, match="chat engine"):
        remote.send_text(conversation_id, "안녕")
    assert remote.get(conversation_id) == EARLIER


def test_remote_server_that_is_not_running_is_engine_unavailable():
    remote = RemoteService(f"http://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(EngineUnavailable, match="API_URL"):
        remote.create()


def test_remote_has_the_chat_service_interface():
    for name in ("create", "get", "send_text", "send_audio", "reset"):
        local, remote = inspect.signature(getattr(ChatService, name)), inspect.signature(getattr(RemoteService, name))
        assert list(local.parameters) == list(remote.parameters), name
        assert [p.default for p in local.parameters.values()] == [p.default for p in remote.parameters.values()]
    assert isinstance(ChatService.info, property) and isinstance(RemoteService.info, property)


class NotThisAppsApi:
    """A real HTTP server on loopback that is not this app's API (what a wrong API_URL reaches):
    every request gets 200 and a JSON object this app never sends."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/private-gateway-7f3a"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("where", ["wrong-api", "nothing-listens"])
def test_remote_errors_never_show_api_url_on_the_page(where, tmp_path):
    """API_URL is the operator's secret address: neither the page's status line and warning nor
    any RemoteService error shows it (host, port or path), whatever is at that address."""
    wrong = NotThisAppsApi() if where == "wrong-api" else None
    url = wrong.url if wrong else f"http://127.0.0.1:{free_port()}/private-gateway-7f3a"
    secrets = (url, url.split("//")[1].split("/")[0], "private-gateway-7f3a")
    remote = RemoteService(url, timeout_s=5)
    handlers = PageHandlers(remote, AudioFiles(tmp_path / "audio"))
    cid = "0123456789abcdef01234567"
    try:
        shown = [handlers.engine_info()]
        for update in (handlers.new_conversation(), handlers.open_conversation(cid, [], ""),
                       after_turn(handlers.stream_text(cid, [], "안녕")), after_turn(handlers.stream_audio(cid, [], str(tmp_path / "none.wav")))):
            shown += [update.status, update.error]
            assert update.error  # each action failed, and said so
        for call in (lambda: remote.stream_text(cid, "안녕").result(), lambda: remote.stream_audio(cid, b"RIFF").result(),
                     lambda: remote.send_audio(cid, b"RIFF")):
            with pytest.raises(VoiceQnAError) as raised:
                call()
            shown.append(str(raised.value))
        for text in shown:
            assert not any(secret in text for secret in secrets), text
    finally:
        remote.close()
        if wrong:
            wrong.close()


def test_one_remote_service_shared_by_many_threads(api_url):
    """The page calls one RemoteService from Gradio's worker threads at once: every call gets its
    own answer, and every conversation exactly its own turns."""
    from concurrent.futures import ThreadPoolExecutor

    remote = RemoteService(api_url)

    def client(n: int) -> tuple[str, list[str]]:
        conversation_id = remote.create([Message("user", f"시작 {n}")])
        asked = [f"질문 {n}-{i}" for i in range(3)]
        for question in asked:
            assert remote.send_text(conversation_id, question).transcript == question
        return conversation_id, asked

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(client, range(12)))
        for n, (conversation_id, asked) in enumerate(results):
            messages = remote.get(conversation_id)
            assert len(messages) == 1 + 2 * len(asked)
            assert [m.text for m in messages if m.role == "user"] == [f"시작 {n}"] + asked
    finally:
        remote.close()


def test_remote_text_only_turn_gives_each_sentence_its_spoken_form_and_no_audio(api_url):
    """The page's browser voice in remote mode: the API server still speaks (its SSE route is
    unchanged), the page gets what a text-only turn has."""
    from voiceqna.ports import Done, Sentence, SentenceAudio
    from voiceqna.textnorm import spoken

    remote = RemoteService(api_url)
    events = list(remote.stream_text(remote.create(), "이름이 뭐예요?", speak=False))
    sentences = [e for e in events if isinstance(e, Sentence)]
    assert sentences and all(s.spoken == spoken(s.text) for s in sentences)
    assert not [e for e in events if isinstance(e, SentenceAudio)] and isinstance(events[-1], Done)
    spoken_by_server = list(remote.stream_text(remote.create(), "이름이 뭐예요?"))
    assert [e for e in spoken_by_server if isinstance(e, SentenceAudio)]
    assert all(e.spoken is None for e in spoken_by_server if isinstance(e, Sentence))
