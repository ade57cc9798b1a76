"""What the page's public API does (gradio_client, "Use via API"): plain values in and out, the project's errors raised."""

from __future__ import annotations

from typing import Callable

from voiceqna.errors import InvalidInput
from voiceqna.page.audio_files import AudioFiles, read_upload
from voiceqna.page.views import Answer
from voiceqna.ports import TurnResult, VoiceChat


class ApiCalls:
    """/ask_text, /ask_audio and /transcribe over `service`; answers' audio saved in `files`.
    public_api.py turns the errors into the API's error message."""

    def __init__(self, service: VoiceChat, files: AudioFiles) -> None:
        self.service = service
        self.files = files

    def ask_text(self, text: str, conversation_id: str = "") -> Answer:
        if not (text or "").strip():
            raise InvalidInput("The message is empty: send the question's text.")
        return self._turn(conversation_id, lambda cid: self.service.send_text(cid, text))

    def ask_audio(self, audio_path: str | None, conversation_id: str = "") -> Answer:
        data = read_upload(audio_path)
        return self._turn(conversation_id, lambda cid: self.service.send_audio(cid, data))

    def transcribe(self, audio_path: str | None) -> str:
        return self.service.transcribe(read_upload(audio_path))

    def _turn(self, conversation_id: str, send: Callable[[str], TurnResult]) -> Answer:
        conversation_id = (conversation_id or "").strip().lower() or self.service.create()
        result = send(conversation_id)
        audio = self.files.save(result.audio) if result.audio else None
        return Answer(result.transcript, result.text, audio, conversation_id)
