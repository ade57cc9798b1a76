"""What every engine inherits: the defaults of the Engine contract (nothing to load ahead, nothing to release)."""

from __future__ import annotations


class BaseEngine:
    """First base class of every engine, before its kind's Protocol in voiceqna.ports (Recognizer,
    ChatEngine, Synthesizer, ConversationStore), which stays for typing:
    `class EspeakSynthesizer(BaseEngine, Synthesizer)`. An engine overrides what it needs."""

    description: str
    """Public (GET /info, the page): the engine and its model, never a path, address or key."""

    def warm_up(self) -> None:
        """Nothing to load ahead of the first request."""

    def close(self) -> None:
        """Nothing to release."""
