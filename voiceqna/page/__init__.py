"""The web page (Gradio Blocks): `build_page(service, settings)` and `mount_options(settings)`.

layout.py    the components, and which handler each event calls
handlers.py  what the buttons do: plain functions over the service, no Gradio inside
assets/      the page's CSS and script
"""

from voiceqna.page.layout import build_page, mount_options

__all__ = ["build_page", "mount_options"]
