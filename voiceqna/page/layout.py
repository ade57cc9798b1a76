"""The Gradio Blocks page over the service: the layout and which handler each event calls.

What the buttons do lives in `handlers.py` (plain functions, tested without a browser); the
page's CSS, its microphone/HTTPS check, the answer's audio queue, the browser's voice (the voice
choice: voice.py) and the hands-free microphone live in `assets/`. The page's own events are private (not in "Use via API", not callable by
gradio_client); its public API is `public_api.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from voiceqna.config import Settings
from voiceqna.page import handsfree_calls
from voiceqna.page.api_calls import ApiCalls
from voiceqna.page.handlers import PageHandlers
from voiceqna.page.public_api import publish_api
from voiceqna.page.views import NO_TURN_YET, PageUpdate, Playback
from voiceqna.page.voice import server_speaks, voice_panel

ASSETS = Path(__file__).resolve().parent / "assets"
CONCURRENT_TURNS = 4
"""Turns the page runs at once; more wait in Gradio's queue, which shows their position."""
WORKING = "⏳ 처리 중이에요… (working)"
PLAYER_HTML = (
    '<div class="answer-player"><span class="answer-player-label">🔊 답변 음성 (answer audio)</span> '
    '<span class="answer-player-state" aria-live="polite"></span> '
    '<button type="button" class="answer-player-stop" title="멈추기 (stop)" disabled>■ 멈추기 (stop)</button></div>'
)
HANDS_FREE_HTML = (
    '<div class="handsfree">'
    '<label class="handsfree-switch"><input type="checkbox" role="switch" class="handsfree-on"> '
    "🎧 핸즈프리 (hands-free)</label>"
    '<label class="handsfree-switch" title="답하는 중에 말씀하시면 답을 멈추고 들어요 (speak over the answer to stop it)">'
    '<input type="checkbox" role="switch" class="handsfree-barge-in"{barge_in}> ✋ 말 끊기 허용 (barge-in)</label>'
    '<span class="handsfree-state" aria-live="polite"></span></div>'
)
"""The hands-free panel (assets/handsfree.js): switched on, the microphone stays open and each
question is answered when the speaker pauses; barge-in lets them talk over the answer to stop it
(on from the start with HANDSFREE_BARGE_IN)."""
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
        "footer_links": ["api", "gradio", "settings"],  # "Use via API": the endpoints of public_api.py
    }


PRIVATE = {"api_visibility": "private"}
"""For the page's own events: its plumbing, not part of its public API."""
ENABLED = gr.update(interactive=True)


@dataclass
class Page:
    """The page's components, as `_layout` placed them."""

    blocks: gr.Blocks
    conversation: gr.State
    remembered: gr.BrowserState
    chat: gr.Chatbot
    status: gr.Markdown
    hands_free: gr.HTML
    """The hands-free switches and state; its value carries the tab's session token and the
    end of each hands-free turn to its script."""
    recording: gr.Audio
    question: gr.Textbox
    send: gr.Button
    answer: gr.HTML
    """The answer's player: each sentence as soon as it is spoken, on the page's Web Audio queue
    (assets/player.js)."""
    voice: gr.Textbox
    """The voice chosen in the voice panel (page/voice.py): browser, server or off, for each turn."""
    conversation_box: gr.Textbox
    open_button: gr.Button
    new_button: gr.Button
    timings: gr.Markdown
    engines: gr.Markdown


def build_page(service, settings: Settings, handlers: PageHandlers | None = None) -> gr.Blocks:
    """The page over `service`; its actions are `handlers` (made here when None: whoever passes
    them calls their `close` at shutdown)."""
    handlers = handlers or PageHandlers(service, hands_free=settings.endpointer_options)
    with gr.Blocks(title="한국어 음성 질의응답", analytics_enabled=False, delete_cache=(3600, 86400)) as blocks:
        page = _layout(blocks, handlers)
        publish_api(ApiCalls(service, handlers.files))  # first: its names stay /ask_text…, the page's private events get suffixes
        _wire(page, handlers)
    blocks.queue(default_concurrency_limit=CONCURRENT_TURNS)
    return blocks


def _layout(blocks: gr.Blocks, handlers: PageHandlers) -> Page:
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
            hands_free = _hands_free_panel(handlers)
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
            answer = gr.HTML(None, html_template=PLAYER_HTML,
                             js_on_load=(ASSETS / "player.js").read_text(encoding="utf-8"),
                             elem_id="answer-player", padding=True, container=True)
            voice = voice_panel(handlers.service)
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
    return Page(blocks, conversation, remembered, chat, status, hands_free, recording, question, send, answer,
                voice, conversation_box, open_button, new_button, timings, engines)


def _hands_free_panel(handlers: PageHandlers) -> gr.HTML:
    """The switches and the state line; its script calls these functions through Gradio's
    component server (POST /gradio_api/component_server, which asks for the page's login)."""

    def handsfree_feed(request: dict) -> dict:
        return handsfree_calls.feed(handlers, request)

    def handsfree_interrupt(request: dict) -> dict:
        return handsfree_calls.interrupt(handlers, request)

    def handsfree_close(request: dict) -> dict:
        return handsfree_calls.close(handlers, request)

    def handsfree_heard(request: dict) -> dict:
        return handsfree_calls.heard(handlers, request)

    html = HANDS_FREE_HTML.replace("{barge_in}", " checked" if handlers.hands_free.options.barge_in else "")
    return gr.HTML(None, html_template=html, js_on_load=(ASSETS / "handsfree.js").read_text(encoding="utf-8"),
                   elem_id="handsfree", server_functions=[handsfree_feed, handsfree_interrupt, handsfree_heard,
                                                       handsfree_close])


def _wire(page: Page, handlers: PageHandlers) -> None:
    """Which handler each event calls. Every handler's result goes through `show`."""
    turn_outputs = [page.conversation, page.conversation_box, page.chat, page.answer, page.status, page.timings,
                    page.remembered]
    inputs_while_busy = [page.send, page.question, page.recording]
    locked, enabled = gr.update(interactive=False), ENABLED

    def show(update: PageUpdate) -> tuple:
        if update.error:
            gr.Warning(update.error, title="확인해 주세요 (please check)")
        return _as_outputs(update, gr.skip() if update.playback is None else _playback_value(update.playback))

    def stream_text(cid, history, text, voice=None) -> Iterator[tuple]:
        yield from streamed(handlers.stream_text(cid, history, text, server_speaks(voice)),
                            lambda failed: (gr.update(value=text if failed else "", interactive=True), enabled))

    def stream_audio(cid, history, path, voice=None) -> Iterator[tuple]:
        yield from streamed(handlers.stream_audio(cid, history, path, server_speaks(voice)),
                            lambda failed: (enabled, gr.update(value=None, interactive=True)))

    def streamed(updates: Iterator[PageUpdate], inputs_after) -> Iterator[tuple]:
        """A streamed turn, started the moment it is asked (no round trip for a separate 'busy'
        event): the page says it is working and locks its inputs, then shows each event, then
        unlocks them (a failed question stays in the box, the recorder is ready again)."""
        changes = _Changes()
        yield changes.of((*(gr.skip(),) * 4, WORKING, *(gr.skip(),) * 2, locked, locked, locked))
        for update in updates:
            final = update.playback is None or update.playback.final
            after = (enabled, *inputs_after(bool(update.error))) if final else (gr.skip(),) * 3
            yield changes.of((*show(update), *after))

    def idle():  # after the turn, whatever happened to it
        return tuple(enabled for _ in inputs_while_busy)

    text_turn = dict(fn=stream_text, inputs=[page.conversation, page.chat, page.question, page.voice],
                     outputs=[*turn_outputs, *inputs_while_busy])
    audio_turn = dict(fn=stream_audio, inputs=[page.conversation, page.chat, page.recording, page.voice],
                      outputs=[*turn_outputs, *inputs_while_busy])
    for trigger, turn in (
        (page.send.click, text_turn),
        (page.question.submit, text_turn),
        (page.recording.stop_recording, audio_turn),
        (page.recording.upload, audio_turn),
    ):
        trigger(**turn, show_progress="minimal", **PRIVATE).then(idle, None, inputs_while_busy, queue=False, **PRIVATE)

    _wire_hands_free(page, handlers, show, streamed, turn_outputs, inputs_while_busy)
    page.open_button.click(
        lambda cid, history, current: show(handlers.open_conversation(cid, history, current)),
        [page.conversation_box, page.chat, page.conversation],
        turn_outputs,
        **PRIVATE,
    )
    page.new_button.click(lambda: show(handlers.new_conversation()), None, turn_outputs, **PRIVATE)
    page.chat.clear(lambda: show(handlers.new_conversation()), None, turn_outputs, **PRIVATE)  # the bin icon
    page.blocks.load(
        lambda saved: (handlers.engine_info(), *_reopen(handlers, saved)),
        [page.remembered],
        [page.engines, *turn_outputs],
        **PRIVATE,
    )


def _wire_hands_free(page: Page, handlers: PageHandlers, show, streamed, turn_outputs: list, inputs_while_busy: list
                     ) -> None:
    """The panel's script asks for a session ("listen") and for each turn its microphone gave
    ("turn"); the session follows the tab's conversation."""
    panel = page.hands_free

    def listen(cid, history, value, request: gr.Request):
        old = value.get("token", "") if isinstance(value, dict) else ""
        update, token = handlers.open_hands_free(cid, history, old, request.session_hash or "")
        return (*show(update), {"token": token, "opened": uuid.uuid4().hex})

    def turn(cid, history, evt: gr.EventData):
        data = evt._data if isinstance(evt._data, dict) else {}
        token, turn_id = str(data.get("token", "")), str(data.get("turn", ""))
        enabled = ENABLED
        updates = handlers.follow_hands_free(token, turn_id, history, cid)
        for values in streamed(updates, lambda failed: (enabled, enabled)):
            yield (*values, gr.skip())
        yield (*(gr.skip(),) * (len(turn_outputs) + len(inputs_while_busy)), {"over": turn_id})

    def conversation_changed(cid, value):
        if isinstance(value, dict) and value.get("token"):
            handlers.hands_free_conversation(value["token"], cid)

    panel.listen(listen, [page.conversation, page.chat, panel], [*turn_outputs, panel], queue=False, **PRIVATE)
    panel.turn(turn, [page.conversation, page.chat], [*turn_outputs, *inputs_while_busy, panel],
               show_progress="hidden", **PRIVATE)
    page.conversation.change(conversation_changed, [page.conversation, panel], None, queue=False, **PRIVATE)

    def tab_gone(request: gr.Request):  # Gradio's heartbeat stopped: the tab closed without its beacon
        handlers.hands_free_tab_gone(request.session_hash or "")

    page.blocks.unload(tab_gone)


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


class _Changes:
    """A streamed update sends only what changed since the last one: the browser then redraws
    nothing else (the chat with its players, above all) while the answer's audio arrives."""

    def __init__(self) -> None:
        self.last: tuple | None = None

    def of(self, values: tuple) -> tuple:
        before, self.last = self.last, values
        if before is None:
            return values
        return tuple(gr.skip() if _same(new, old) else new for new, old in zip(values, before))


def _same(new: Any, old: Any) -> bool:
    try:
        return type(new) is type(old) and bool(new == old)
    except Exception:  # a value that cannot be compared: send it
        return False


def _playback_value(playback: Playback) -> dict:
    """The audio queue's value; Gradio serves each clip (a FileData) and gives the page its URL."""
    value = {
        "turn": playback.turn,
        "clips": [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in playback.clips],
        "final": playback.final,
        "stopped": playback.stopped,
    }
    if playback.spoken is not None:  # the browser speaks this turn (assets/speech.js)
        value["spoken"] = list(playback.spoken)
    return value
