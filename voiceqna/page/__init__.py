"""The web page (Gradio Blocks): `build_page(service, settings)` and `mount_options(settings)`.

layout.py             the components, and which handler each event calls
public_api.py         the page's API for gradio_client: /ask_text, /ask_audio, /transcribe
handlers.py           what the buttons do: plain functions over the service, no Gradio inside
views.py              what the page shows: PageUpdate, Playback, Answer, status lines, bubbles, timings
audio_files.py        uploads read, answer audio written as files for Gradio to serve
api_calls.py          what the public API does (plain values in and out)
handsfree.py          every tab's hands-free session by token, and the janitor that ends idle ones
handsfree_session.py  one tab's session: its endpointer, its conversation and its turns, in order
handsfree_calls.py    the hands-free panel's JSON calls
assets/        page.css, page.js (the microphone/HTTPS check), player.js (the answer's audio queue)
"""

from voiceqna.page.handlers import PageHandlers
from voiceqna.page.layout import build_page, mount_options

__all__ = ["PageHandlers", "build_page", "mount_options"]
