"""Chat engine "offline": answers from the Korean knowledge base, a polite fallback otherwise."""

from __future__ import annotations

from typing import Iterator, Sequence

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.engines.chat_knowledge import KnowledgeBase
from voiceqna.ports import ChatEngine, TextMessage
from voiceqna.sentences import split_sentences

FALLBACK_ANSWER = (
    "죄송해요, 그 질문에는 아직 답을 드릴 수 없어요. 다른 질문을 해 주시거나, "
    "인터넷 연결된 대화 엔진을 설정해 주세요."
)


def build(settings: Settings) -> "OfflineChatEngine":
    return OfflineChatEngine(KnowledgeBase.load(settings.knowledge_base))


class OfflineChatEngine(BaseEngine, ChatEngine):
    description = "offline knowledge base"

    def __init__(self, knowledge: KnowledgeBase) -> None:
        self.knowledge = knowledge

    def stream(self, history: Sequence[TextMessage], question: str) -> Iterator[str]:
        """The matched answer, one sentence at a time (sentences after the first start with a space)."""
        match = self.knowledge.match(question)
        for index, sentence in enumerate(split_sentences(match.answer if match else FALLBACK_ANSWER)):
            yield sentence if index == 0 else " " + sentence
