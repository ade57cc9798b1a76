"""The page's voice choice (🔊 음성): the panel, what its value asks of a turn, the spoken form of a bubble.

The panel's script (assets/speech.js) lists the browser's Korean voices and keeps the choice in
the browser (localStorage): 브라우저 음성 (the browser speaks each sentence: Web Speech API),
서버 음성 (the server's speech engine, as before) or 끄기 (off). Its value — "browser", "server"
or "off" — goes into a hidden text box that is an input of each turn the page asks for: only
"server" has the server synthesize.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import gradio as gr

from voiceqna.sentences import SentenceSplitter
from voiceqna.spoken import spoken

ASSETS = Path(__file__).resolve().parent / "assets"
MODES = ("browser", "server", "off")
PANEL_HTML = (
    '<div class="voice">'
    '<label class="voice-label">🔊 음성 (voice) '
    '<select class="voice-mode" aria-label="음성 (voice)">'
    '<option value="browser">브라우저 음성 (browser voice)</option>'
    '<option value="server">서버 음성 (server voice)</option>'
    '<option value="off">끄기 (off)</option></select></label> '
    '<label class="voice-browser">목소리 (voice) <select class="voice-name" aria-label="목소리 (voice)"></select></label> '
    '<label class="voice-browser">빠르기 (speed) <input type="range" class="voice-rate" min="0.5" max="2" step="0.1" '
    'value="1" aria-label="빠르기 (speed)"> <span class="voice-rate-value">1.0×</span></label>'
    '<div class="voice-note" aria-live="polite"></div></div>'
)
"""The choice, the browser's Korean voices (filled by speech.js), the speed, and a note (a
network voice sends the answer's text to the browser's vendor; no Korean voice in this browser)."""


def server_speaks(voice: str | None) -> bool:
    """Whether the server synthesizes a turn the panel's value asks for (unknown values: yes, as before)."""
    return voice not in ("browser", "off")


def spoken_sentences(text: str, speech_text: Callable[[str], str] = spoken) -> list[dict]:
    """An answer's sentences as the browser speaks them: [{text, spoken}] (a bubble replayed)."""
    splitter = SentenceSplitter()
    pieces = [*splitter.feed(str(text or "")), *splitter.flush()]
    return [{"text": piece, "spoken": speech_text(piece)} for piece in pieces]


def voice_panel(service) -> gr.Textbox:
    """The panel, and the hidden box holding the choice (what a turn reads); its script asks
    `voice_sentences` for the spoken form of a bubble it replays (the service's own reading
    when it has one: TTS_NORMALIZE)."""
    speech_text = getattr(service, "speech_text", spoken)

    def voice_sentences(request: dict) -> dict:
        text = request.get("text", "") if isinstance(request, dict) else ""
        return {"sentences": spoken_sentences(str(text)[:20000], speech_text)}

    gr.HTML("", html_template=PANEL_HTML, js_on_load=(ASSETS / "speech.js").read_text(encoding="utf-8"),
            elem_id="voice", server_functions=[voice_sentences])
    return gr.Textbox("", visible="hidden", elem_id="voice-mode", show_label=False, container=False)
