"""The service both front doors call: ChatService, and what its turns run on.

chat_service.py  ChatService: conversations, and turns whole or streamed
turn_stream.py   TurnStream: a turn's events from its thread to the reader
admission.py     the recognizer's queue and the per-conversation locks
checks.py        what a message or an idempotency key must be
"""

from voiceqna.service.chat_service import INTERRUPTED_MARK, NOT_HEARD, ChatService, Limits
from voiceqna.service.turn_stream import TurnStream

__all__ = ["ChatService", "INTERRUPTED_MARK", "Limits", "NOT_HEARD", "TurnStream"]
