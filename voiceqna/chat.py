"""Chat engines: an OpenAI-compatible one and an offline knowledge-base one.

Each takes the conversation so far and the new question and returns the answer text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, Sequence

from voiceqna.errors import EngineUnavailable
from voiceqna.knowledge import KnowledgeBase

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "당신은 친절한 한국어 음성 비서입니다. 사용자의 말은 음성 인식으로 받아 적은 것이라 "
    "오타나 띄어쓰기 오류가 있을 수 있으니 뜻을 헤아려 이해하세요. 답변은 소리 내어 읽기 좋게 "
    "한국어로 두세 문장 이내로 짧고 분명하게 하고, 목록이나 마크다운은 쓰지 마세요."
)
FALLBACK_ANSWER = (
    "죄송해요, 그 질문에는 아직 답을 드릴 수 없어요. 다른 질문을 해 주시거나, "
    "인터넷 연결된 대화 엔진을 설정해 주세요."
)


@dataclass(frozen=True)
class Turn:
    """One earlier message as the chat engine sees it."""

    role: str
    text: str


class ChatEngine(Protocol):
    def reply(self, history: Sequence[Turn], question: str) -> str:
        """Answer `question` given the earlier messages (oldest first)."""


class OfflineChatEngine:
    """Answers from the Korean knowledge base; a polite fallback when nothing matches."""

    description = "offline knowledge base"

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge

    def reply(self, history: Sequence[Turn], question: str) -> str:
        match = self.knowledge.match(question)
        return match.answer if match else FALLBACK_ANSWER


class OpenAIChatEngine:
    """Any server speaking OpenAI's /v1/chat/completions (OpenAI, vLLM, Ollama, …)."""

    def __init__(
        self, api_key: str, model: str, base_url: str = "", timeout_s: float = 30.0, history_messages: int = 10
    ) -> None:
        from openai import OpenAI

        self.client = OpenAI(api_key=api_key, base_url=base_url or None, timeout=timeout_s, max_retries=1)
        self.model = model
        self.history_messages = history_messages
        self.description = f"OpenAI-compatible {model}"  # public (GET /info): no server address
        logger.info("Chat engine: OpenAI-compatible %s at %s", model, base_url or "api.openai.com")

    def messages(self, history: Sequence[Turn], question: str) -> list[dict[str, str]]:
        recent = [t for t in history if t.role in ("user", "assistant") and t.text][-self.history_messages :]
        return (
            [{"role": "system", "content": SYSTEM_PROMPT}]
            + [{"role": t.role, "content": t.text} for t in recent]
            + [{"role": "user", "content": question}]
        )

    def reply(self, history: Sequence[Turn], question: str) -> str:
        import openai

        try:
            response = self.client.chat.completions.create(model=self.model, messages=self.messages(history, question))
        except openai.OpenAIError as exc:
            logger.warning("Chat engine failed: %s", exc)
            raise EngineUnavailable(
                f"The chat engine did not answer ({type(exc).__name__}): check OPENAI_API_KEY, "
                "OPENAI_BASE_URL and the server, then try again."
            ) from None
        text = (response.choices[0].message.content or "").strip() if response.choices else ""
        if not text:
            raise EngineUnavailable("The chat engine returned an empty answer: try again.")
        return text
