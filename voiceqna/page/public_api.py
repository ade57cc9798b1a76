"""The page's public API, for gradio_client and "Use via API": /ask_text, /ask_audio and
/transcribe, named endpoints that take and return plain values (no UI markup)."""

from __future__ import annotations

import gradio as gr

from voiceqna.page.api_calls import ApiCalls
from voiceqna.page.views import Answer, describe_error


def publish_api(calls: ApiCalls) -> None:
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
        return _api_call(lambda: _answer_values(calls.ask_text(text, conversation_id)))

    def ask_audio(audio: str, conversation_id: str = "") -> tuple[str, str, str | None, str]:
        """Ask a question by voice; the answer comes as text and as speech.

        Parameters:
            audio: a recording in any format ffmpeg reads (WAV, MP3, WebM, …), Korean speech.
            conversation_id: a conversation to continue (24 hex characters); "" starts a new one.
        Returns:
            the transcript ("" when no speech was heard: nothing is stored then), the answer,
            the answer's WAV file (None when speech is off), the conversation id.
        """
        return _api_call(lambda: _answer_values(calls.ask_audio(audio, conversation_id)))

    def transcribe(audio: str) -> str:
        """Speech to text only, without a conversation.

        Parameters:
            audio: a recording in any format ffmpeg reads, Korean speech.
        Returns:
            the Korean text ("" when no speech is heard).
        """
        return _api_call(lambda: calls.transcribe(audio))

    gr.on([], ask_text, [text, conversation_id], turn_outputs, api_name="ask_text")
    gr.on([], ask_audio, [audio, conversation_id], turn_outputs, api_name="ask_audio")
    gr.on([], transcribe, [audio], [transcript], api_name="transcribe")


def _answer_values(answer: Answer) -> tuple[str, str, str | None, str]:
    return answer.transcript, answer.text, answer.audio, answer.conversation_id


def _api_call(call):
    """The public API's errors: the page's one-line message (which says the fix), never a trace."""
    try:
        return call()
    except Exception as exc:
        raise gr.Error(describe_error(exc).removeprefix("⚠️ "), print_exception=False) from None
