"""The Gradio Blocks page over the service: the layout, which handler each event calls, and
the page's public API.

What the buttons do lives in `handlers.py` (plain functions, tested without a browser);
the page's CSS and the microphone/HTTPS check live in `assets/`. The page's own events are
private (not in "Use via API", not callable by gradio_client); the public API is a few named
endpoints that take and return plain values: /ask_text, /ask_audio, /transcribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from voiceqna.config import Settings
from voiceqna.page.handlers import NO_TURN_YET, PageHandlers, PageUpdate, Playback, describe_error

ASSETS = Path(__file__).resolve().parent / "assets"
CONCURRENT_TURNS = 4
"""Turns the page runs at once; more wait in Gradio's queue, which shows their position."""
WORKING = "⏳ 처리 중이에요… (working)"
ANSWER_PLAYERS = ("queue", "gradio", "whole")
"""How the answer is heard. queue (the page's): each sentence as soon as it is spoken, on our
Web Audio queue (assets/player.js). gradio: the same stream through Gradio's streaming
gr.Audio (AAC over HLS). whole: no streaming, the whole answer once it is done (the page before
streaming). benchmarks/page_first_audio.py measures all three; queue starts first."""
PLAYER_HTML = (
    '<div class="answer-player"><span class="answer-player-label">🔊 답변 음성 (answer audio)</span> '
    '<span class="answer-player-state" aria-live="polite"></span> '
    '<button type="button" class="answer-player-stop" title="멈추기 (stop)" disabled>■ 멈추기 (stop)</button></div>'
)
MIC_WARNING = (  # hidden until assets/page.js finds the microphone blocked
    '<div class="mic-warning-box" role="alert">'
    "<strong>🔒 이 주소에서는 브라우저가 마이크를 막아요</strong> "
    "(the browser blocks the microphone on plain HTTP from another machine).<br>"
    "해결 (fix): 서버를 <code>python app.py --ssl</code> 로 실행하고 "
    '<a class="https-link" href="#">https:// 주소</a>로 여세요 '
    "(자체 서명 인증서 경고는 ‘고급 → 계속’으로 넘어가면 돼요), "
    "또는 서버 컴퓨터에서 <code class='localhost-url'>http://localhost</code> 로 여세요. "
    "글자 입력과 파일 올리기는 지금도 쓸 수 있어요 (typing and uploads still work)."
    "</div>"
)


def mount_options(settings: Settings) -> dict:
    """Keyword arguments for `gr.mount_gradio_app` (Gradio 6 takes css/js there, not on Blocks)."""
    return {
        "css_paths": [ASSETS / "page.css"],
        "js": (ASSETS / "page.js").read_text(encoding="utf-8"),
        "max_file_size": settings.max_upload_bytes,
        "ssr_mode": False,
        "footer_links": ["api", "gradio", "settings"],  # "Use via API": the public endpoints of `_publish_api`
    }


@dataclass
class Page:
    """The page's components, as `_layout` placed them."""

    blocks: gr.Blocks
    conversation: gr.State
    remembered: gr.BrowserState
    chat: gr.Chatbot
    status: gr.Markdown
    recording: gr.Audio
    question: gr.Textbox
    send: gr.Button
    answer: gr.Component
    """The answer's player: our audio queue (gr.HTML), or a gr.Audio (see ANSWER_PLAYERS)."""
    conversation_box: gr.Textbox
    open_button: gr.Button
    new_button: gr.Button
    timings: gr.Markdown
    engines: gr.Markdown


def build_page(service, settings: Settings, answer_player: str = "queue") -> gr.Blocks:
    """The page over `service`; `answer_player` is one of ANSWER_PLAYERS (the default is the page's)."""
    if answer_player not in ANSWER_PLAYERS:
        raise ValueError(f"answer_player={answer_player!r}: use one of {', '.join(ANSWER_PLAYERS)}")
    with gr.Blocks(title="한국어 음성 질의응답", analytics_enabled=False, delete_cache=(3600, 86400)) as blocks:
        page = _layout(blocks, answer_player)
        handlers = PageHandlers(service)
        _publish_api(handlers)  # first: its names stay /ask_text…, the page's private events get suffixes
        _wire(page, handlers, answer_player)
    blocks.queue(default_concurrency_limit=CONCURRENT_TURNS)
    return blocks


def _layout(blocks: gr.Blocks, answer_player: str) -> Page:
    """Chat, recorder and text box on the left; answer player, conversation id, timings and engines on the right."""
    conversation = gr.State("")
    remembered = gr.BrowserState("", storage_key="voiceqna-conversation")
    gr.Markdown("# 🎙️ 한국어 음성 질의응답 <small>Korean Voice Q&A</small>", elem_id="title")
    gr.HTML(MIC_WARNING, elem_id="mic-warning", js_on_load=None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            chat = gr.Chatbot(
                label="대화 (conversation)",
                elem_id="chat",
                height=460,
                layout="bubble",
                buttons=["copy"],
                feedback_options=None,
                placeholder="녹음 버튼을 누르고 한국어로 질문해 보세요.<br><small>Press record and ask in Korean, or type below.</small>",
            )
            status = gr.Markdown("", elem_id="status")
            recording = gr.Audio(
                sources=["microphone", "upload"],
                type="filepath",
                label="음성으로 질문 (record or upload audio)",
                elem_id="question-audio",
                buttons=[],
            )
            with gr.Row():
                question = gr.Textbox(
                    show_label=False,
                    placeholder="글자로 질문하기 (type a question) — Enter로 보내기",
                    elem_id="question-text",
                    scale=5,
                    max_lines=4,
                )
                send = gr.Button("보내기 (Send)", variant="primary", elem_id="send", scale=1, min_width=110)
        with gr.Column(scale=2, min_width=260):
            answer = _answer_player(answer_player)
            with gr.Group():
                conversation_box = gr.Textbox(
                    label="대화 ID (conversation id)",
                    placeholder="24자리 ID를 넣고 열기 (paste an id, then Open)",
                    elem_id="conversation-id",
                    max_lines=1,
                )
                with gr.Row():
                    open_button = gr.Button("열기 (Open)", elem_id="open", size="sm")
                    new_button = gr.Button("새 대화 (New)", elem_id="new", size="sm")
            with gr.Accordion("처리 시간 (timings of the last turn)", open=True):
                timings = gr.Markdown(NO_TURN_YET, elem_id="timings")
            with gr.Accordion("실행 중인 엔진 (engines)", open=True):
                engines = gr.Markdown("", elem_id="engines")
            gr.Markdown("REST API: [`/api`](/api/docs) — Unity 등 게임 클라이언트용 (for game clients)", elem_id="api-hint")
    return Page(blocks, conversation, remembered, chat, status, recording, question, send, answer,
                conversation_box, open_button, new_button, timings, engines)


def _answer_player(kind: str) -> gr.Component:
    if kind == "queue":
        return gr.HTML(None, html_template=PLAYER_HTML, js_on_load=(ASSETS / "player.js").read_text(encoding="utf-8"),
                       elem_id="answer-player", padding=True, container=True)
    return gr.Audio(
        label="답변 음성 (answer, plays automatically)",
        autoplay=True,
        interactive=False,
        streaming=kind == "gradio",
        elem_id="answer-audio",
        buttons=["download"],
    )


def _wire(page: Page, handlers: PageHandlers, answer_player: str) -> None:
    """Which handler each event calls. Every handler's result goes through `show`."""
    turn_outputs = [page.conversation, page.conversation_box, page.chat, page.answer, page.status, page.timings,
                    page.remembered]
    inputs_while_busy = [page.send, page.question, page.recording]
    private = dict(api_visibility="private")  # the page's plumbing: not part of its public API

    def show(update: PageUpdate, answer: "_AnswerValues | None" = None) -> tuple:
        if update.error:
            gr.Warning(update.error, title="확인해 주세요 (please check)")
        return _as_outputs(update, (answer or _AnswerValues(answer_player)).of(update))

    def ask_text(cid, history, text):
        update = handlers.ask_text(cid, history, text)
        return (*show(update), text if update.error else "")  # a failed question stays in the box

    def ask_audio(cid, history, path):
        return (*show(handlers.ask_audio(cid, history, path)), None)  # the recorder is ready again

    def stream_text(cid, history, text) -> Iterator[tuple]:
        answer = _AnswerValues(answer_player)
        for update in handlers.stream_text(cid, history, text):
            final = update.playback is None or update.playback.final
            yield (*show(update, answer), (text if update.error else "") if final else gr.skip())

    def stream_audio(cid, history, path) -> Iterator[tuple]:
        answer = _AnswerValues(answer_player)
        for update in handlers.stream_audio(cid, history, path):
            final = update.playback is None or update.playback.final
            yield (*show(update, answer), None if final else gr.skip())

    def busy():  # answers at once, before the turn starts: the page shows that it is working
        return WORKING, *(gr.update(interactive=False) for _ in inputs_while_busy)

    def idle():
        return tuple(gr.update(interactive=True) for _ in inputs_while_busy)

    streamed = answer_player != "whole"
    text_turn = dict(fn=stream_text if streamed else ask_text, inputs=[page.conversation, page.chat, page.question],
                     outputs=[*turn_outputs, page.question])
    audio_turn = dict(fn=stream_audio if streamed else ask_audio,
                      inputs=[page.conversation, page.chat, page.recording], outputs=[*turn_outputs, page.recording])
    for trigger, turn in (
        (page.send.click, text_turn),
        (page.question.submit, text_turn),
        (page.recording.stop_recording, audio_turn),
        (page.recording.upload, audio_turn),
    ):
        trigger(busy, None, [page.status, *inputs_while_busy], queue=False, **private).then(
            **turn, show_progress="minimal", **private
        ).then(idle, None, inputs_while_busy, queue=False, **private)

    page.open_button.click(
        lambda cid, history, current: show(handlers.open_conversation(cid, history, current)),
        [page.conversation_box, page.chat, page.conversation],
        turn_outputs,
        **private,
    )
    page.new_button.click(lambda: show(handlers.new_conversation()), None, turn_outputs, **private)
    page.chat.clear(lambda: show(handlers.new_conversation()), None, turn_outputs, **private)  # the bin icon
    page.blocks.load(
        lambda saved: (handlers.engine_info(), *_reopen(handlers, saved)),
        [page.remembered],
        [page.engines, *turn_outputs],
        **private,
    )


def _publish_api(handlers: PageHandlers) -> None:
    """The page's public API, for gradio_client and "Use via API": named endpoints that take and
    return plain values. They run on the page's queue (same concurrency), through the same
    service (same limits), behind the same login (API_KEY). Their components are never shown."""
    with gr.Column(visible=False):
        audio = gr.Audio(sources=["upload"], type="filepath", label="audio")
        text = gr.Textbox(label="text")
        conversation_id = gr.Textbox("", label="conversation_id")
        transcript = gr.Textbox(label="transcript")
        answer = gr.Textbox(label="answer")
        answer_audio = gr.Audio(type="filepath", label="answer_audio")
        answered_id = gr.Textbox(label="conversation_id")
    turn_outputs = [transcript, answer, answer_audio, answered_id]

    def ask_text(text: str, conversation_id: str = "") -> tuple[str, str, str | None, str]:
        """Ask a question in writing; the answer comes as text and as speech.

        Parameters:
            text: the question, in Korean.
            conversation_id: a conversation to continue (24 hex characters); "" starts a new one.
        Returns:
            the question, the answer, the answer's WAV file (None when speech is off), the conversation id.
        """
        return _api_call(lambda: _answer_values(handlers.api_ask_text(text, conversation_id)))

    def ask_audio(audio: str, conversation_id: str = "") -> tuple[str, str, str | None, str]:
        """Ask a question by voice; the answer comes as text and as speech.

        Parameters:
            audio: a recording in any format ffmpeg reads (WAV, MP3, WebM, …), Korean speech.
            conversation_id: a conversation to continue (24 hex characters); "" starts a new one.
        Returns:
            the transcript ("" when no speech was heard: nothing is stored then), the answer,
            the answer's WAV file (None when speech is off), the conversation id.
        """
        return _api_call(lambda: _answer_values(handlers.api_ask_audio(audio, conversation_id)))

    def transcribe(audio: str) -> str:
        """Speech to text only, without a conversation.

        Parameters:
            audio: a recording in any format ffmpeg reads, Korean speech.
        Returns:
            the Korean text ("" when no speech is heard).
        """
        return _api_call(lambda: handlers.api_transcribe(audio))

    gr.on([], ask_text, [text, conversation_id], turn_outputs, api_name="ask_text")
    gr.on([], ask_audio, [audio, conversation_id], turn_outputs, api_name="ask_audio")
    gr.on([], transcribe, [audio], [transcript], api_name="transcribe")


def _answer_values(answer) -> tuple[str, str, str | None, str]:
    return answer.transcript, answer.text, answer.audio, answer.conversation_id


def _api_call(call):
    """The public API's errors: the page's one-line message (which says the fix), never a trace."""
    try:
        return call()
    except Exception as exc:
        raise gr.Error(describe_error(exc).removeprefix("⚠️ "), print_exception=False) from None


def _reopen(handlers: PageHandlers, saved: str) -> tuple:
    """On page load: reopen the conversation this browser used last, if it still exists."""
    if saved:
        update = handlers.open_conversation(saved, [], "")
        if not update.error:
            return _as_outputs(update, gr.skip())
    return _as_outputs(PageUpdate("", []), gr.skip())


def _as_outputs(update: PageUpdate, answer: Any) -> tuple:
    """Values for `turn_outputs`; a failure leaves the last timings in place."""
    return (
        update.conversation_id,
        update.conversation_id,
        update.chat,
        answer,
        update.status,
        gr.skip() if update.timings is None else update.timings,
        update.conversation_id,
    )


class _AnswerValues:
    """What each update of one action puts in the answer's player, for each of ANSWER_PLAYERS."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sent = 0
        """Clips already sent (gradio: each update carries only the newest sentence)."""

    def of(self, update: PageUpdate) -> Any:
        if self.kind == "whole":
            return gr.skip() if update.error else update.answer_audio
        if update.playback is None:
            return gr.skip()
        if self.kind == "queue":
            return _playback_value(update.playback)
        new = update.playback.clips[self.sent:]  # gradio: one chunk per newly spoken sentence
        self.sent = len(update.playback.clips)
        return Path(new[-1]).read_bytes() if new else None


def _playback_value(playback: Playback) -> dict:
    """The audio queue's value; Gradio serves each clip (a FileData) and gives the page its URL."""
    return {
        "turn": playback.turn,
        "clips": [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in playback.clips],
        "final": playback.final,
        "stopped": playback.stopped,
    }
