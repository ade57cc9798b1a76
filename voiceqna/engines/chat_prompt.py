"""What LLM chat engines send: the Korean system prompt and a bounded slice of the history."""

from __future__ import annotations

from typing import Sequence

from voiceqna.ports import TextMessage

SYSTEM_PROMPT = (
    "당신은 친절한 한국어 음성 비서입니다. 사용자의 말은 음성 인식으로 받아 적은 것이라 "
    "오타나 띄어쓰기 오류가 있을 수 있으니 뜻을 헤아려 이해하세요. 답변은 소리 내어 읽기 좋게 "
    "한국어로 두세 문장 이내로 짧고 분명하게 하고, 목록이나 마크다운은 쓰지 마세요."
)


def chat_messages(history: Sequence[TextMessage], question: str, limit: int) -> list[dict[str, str]]:
    """OpenAI-style messages: the system prompt, the last `limit` user/assistant messages, the question."""
    recent = [m for m in history if m.role in ("user", "assistant") and m.text][-limit:] if limit > 0 else []
    return (
        [{"role": "system", "content": SYSTEM_PROMPT}]
        + [{"role": m.role, "content": m.text} for m in recent]
        + [{"role": "user", "content": question}]
    )
