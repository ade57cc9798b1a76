"""Chat engine "openai": any server with OpenAI's /v1/chat/completions (OpenAI, vLLM, Ollama), streamed."""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.engines.chat_prompt import chat_messages
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import ChatEngine, TextMessage

logger = logging.getLogger(__name__)


def build(settings: Settings) -> "OpenAIChatEngine":
    return OpenAIChatEngine(
        api_key=settings.chat_api_key,
        model=settings.chat_model,
        base_url=settings.chat_base_url,
        timeout_s=settings.openai_timeout_s,
        history_messages=settings.chat_history_messages,
    )


class OpenAIChatEngine(BaseEngine, ChatEngine):
    def __init__(
        self, api_key: str, model: str, base_url: str = "", timeout_s: float = 30.0, history_messages: int = 10
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=1)
        self.model = model
        self.history_messages = history_messages
        self.description = f"OpenAI-compatible {model}"  # public (GET /info): no server address
        logger.info("Chat engine: OpenAI-compatible %s at %s", model, base_url or "api.openai.com")

    def messages(self, history: Sequence[TextMessage], question: str) -> list[dict[str, str]]:
        return chat_messages(history, question, self.history_messages)

    def stream(self, history: Sequence[TextMessage], question: str) -> Iterator[str]:
        import openai

        written, finished = False, False
        try:
            chunks = self.client.chat.completions.create(
                model=self.model, messages=self.messages(history, question), stream=True
            )
            with chunks:
                for chunk in chunks:
                    if not chunk.choices:
                        continue
                    piece = chunk.choices[0].delta.content
                    finished = finished or chunk.choices[0].finish_reason is not None
                    if piece:
                        written = True
                        yield piece
        except openai.OpenAIError as exc:
            logger.warning("Chat engine failed: %s", exc)
            raise EngineUnavailable(
                f"The chat engine did not answer ({type(exc).__name__}): check CHAT_API_KEY, CHAT_BASE_URL "
                "and CHAT_MODEL (or OPENAI_API_KEY, OPENAI_BASE_URL) and the server, then try again."
            ) from None
        if not written:
            raise EngineUnavailable("The chat engine returned an empty answer: try again.")
        if not finished:  # the connection ended before the server said the answer was complete
            raise EngineUnavailable("The chat engine stopped in the middle of its answer: try again.")

    def close(self) -> None:
        self.client.close()
