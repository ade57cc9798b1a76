"""The web page (Gradio Blocks): `build_page(service, settings)` and `mount_options(settings)`.

layout.py      the components, and which handler each event calls
public_api.py  the page's API for gradio_client: /ask_text, /ask_audio, /transcribe
handlers.py    what the buttons and the API do: plain functions over the service, no Gradio inside
assets/        page.css, page.js (the microphone/HTTPS check), player.js (the answer's audio queue)
"""

from voiceqna.page.handlers import PageHandlers
from voiceqna.page.layout import build_page, mount_options

__all__ = ["PageHandlers", "build_page", "mount_options"]
