"""Store "mongodb": one MongoDB collection, shared by several app replicas.

One document per conversation::

    {_id: ObjectId, created_at: date, size: int, messages: [{role, text, audio: Binary}, ...],
     turns: [{key, fingerprint, token, at, transcript, audio_error}, ...]}

`turns` holds the idempotency keys of keyed turns; the answer of such a turn carries the same
`token` in its message. A keyed append is conditional on no live record of its key, so the
check and the write are one atomic update: two replicas storing one key store one turn.

Same behaviour as `SQLiteStore`: the same 24-hex ids (random, not pymongo's sequential
ObjectIds), messages oldest first, and every write is one single-document update, which
MongoDB applies atomically — a turn (`$push` with `$each`) or a reset (`$set`) is seen
whole or not at all, so two replicas answering one conversation never interleave half turns.

A MongoDB document holds at most 16 MiB, audio included (a 5 s question and its spoken
answer take about 0.4 MB; a 120 s recording about 3.8 MB). `size` counts the BSON bytes of
the messages and every append is conditional on it, so a turn that would overflow the
document is refused whole with `AudioTooLarge` ("reset the conversation or create a new
one") instead of failing half-way or on the server.
"""

from __future__ import annotations

import logging
import secrets
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import AudioTooLarge, EngineUnavailable, NotFound
from voiceqna.ports import (
    IDEMPOTENCY_TTL_S,
    ConversationStore,
    Message,
    StoredTurn,
    TextMessage,
    TurnKey,
    check_id,
    check_keyed_turn,
    new_id,
)

logger = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's hard limit on one document (BSON)."""
MESSAGES_BUDGET = MAX_DOCUMENT_BYTES - 64 * 1024
"""What the messages of one conversation may take; the rest is headroom for the other fields."""
_TOO_LARGE_CODES = {10334, 17419, 17420}
"""Server error codes for a document over 16 MiB (BSONObjectTooLarge and update variants)."""


def build(settings: Settings) -> "MongoStore":
    return MongoStore(settings.mongodb_uri, settings.mongodb_database, settings.mongodb_collection)


class MongoStore(BaseEngine, ConversationStore):
    """Conversations in one MongoDB collection. Thread-safe; safe across processes and hosts."""

    def __init__(
        self,
        uri: str,
        database: str = "voiceqna",
        collection: str = "chats",
        client: Any = None,
        timeout_s: float = 5.0,
        key_ttl_s: float = IDEMPOTENCY_TTL_S,
    ) -> None:
        """Connect, check the server answers (`ping`) and create the indexes.

        `client` is an already-built pymongo-compatible client (tests pass an in-process
        fake); otherwise one is made from `uri`, waiting at most `timeout_s` for a server
        unless the URI sets serverSelectionTimeoutMS itself.
        Raises EngineUnavailable, with the fix, when the server cannot be reached.
        """
        self._errors = _pymongo_errors()
        self.key_ttl_s = key_ttl_s
        self.client = client if client is not None else _connect(uri, timeout_s)
        self.collection = self.client[database][collection]
        with self._guard(f"MongoDB at {_redact(uri)} cannot be reached", at_start=True):
            self.client.admin.command("ping")
            self.collection.create_index("created_at")
        self.description = f"MongoDB {database}.{collection}"  # public (GET /info): no server address
        logger.info("Conversation store: MongoDB at %s, %s.%s", _redact(uri), database, collection)

    def create(self, messages: Sequence[Message] = ()) -> str:
        documents = [_document(m) for m in messages]
        size = _size(documents)
        if size > MESSAGES_BUDGET:
            raise AudioTooLarge(
                f"These messages take {size / 1e6:.1f} MB, audio included, over MongoDB's 16 MB document limit "
                "for one conversation: send less or shorter audio. Nothing was stored."
            )
        conversation_id = new_id()
        with self._guard("The conversation could not be created"):
            self.collection.insert_one({
                "_id": _object_id(conversation_id),
                "created_at": datetime.now(timezone.utc),
                "size": size,
                "messages": documents,
            })
        return conversation_id

    def messages(self, conversation_id: str) -> list[Message]:
        oid = _object_id(conversation_id)
        with self._guard("The conversation could not be read"):
            found = self.collection.find_one({"_id": oid}, {"messages": 1})
        if found is None:
            raise _not_found(conversation_id)
        return [Message(m["role"], m["text"], bytes(m.get("audio") or b"")) for m in found.get("messages", [])]

    def history(self, conversation_id: str) -> list[TextMessage]:
        oid = _object_id(conversation_id)
        with self._guard("The conversation could not be read"):
            found = self.collection.find_one({"_id": oid}, {"messages.role": 1, "messages.text": 1})
        if found is None:
            raise _not_found(conversation_id)
        return [TextMessage(m["role"], m["text"]) for m in found.get("messages", [])]

    def append(self, conversation_id: str, messages: Sequence[Message],
               key: TurnKey | None = None) -> StoredTurn | None:
        oid = _object_id(conversation_id)
        documents = [_document(m) for m in messages]
        push: dict[str, Any] = {"messages": {"$each": documents}}
        condition: dict[str, Any] = {"_id": oid}
        if key is not None:
            check_keyed_turn(messages)
            token = secrets.token_hex(8)
            documents[-1]["turn"] = token  # the answer, found again by its token
            record = {"key": key.key, "fingerprint": key.fingerprint, "token": token, "at": time.time(),
                      "transcript": messages[0].text, "audio_error": key.audio_error}
            push["turns"] = record
            condition["turns"] = {"$not": {"$elemMatch": self._live(key.key)}}
        added = _size(documents) + (_size([push["turns"]]) if key is not None else 0)
        if added <= MESSAGES_BUDGET:
            condition["size"] = {"$lte": MESSAGES_BUDGET - added}
            with self._guard("The turn could not be stored"):
                result = self.collection.update_one(condition, {"$push": push, "$inc": {"size": added}})
            if result.matched_count == 1:
                return None
        # Nothing was written: the key was used already, or there is no such conversation, or it is full.
        if key is not None:
            earlier = self.turn(conversation_id, key.key)
            if earlier is not None:
                return earlier
        with self._guard("The conversation could not be read"):
            found = self.collection.find_one({"_id": oid}, {"size": 1})
        if found is None:
            raise _not_found(conversation_id)
        raise _too_large(f" ({found.get('size', 0) / 1e6:.1f} MB stored, {added / 1e6:.1f} MB more, audio included)")

    def turn(self, conversation_id: str, key: str) -> StoredTurn | None:
        oid = _object_id(conversation_id)
        with self._guard("The conversation could not be read"):
            found = self.collection.find_one({"_id": oid}, {"turns": {"$elemMatch": self._live(key)}})
        if found is None:
            raise _not_found(conversation_id)
        records = [r for r in found.get("turns") or [] if r.get("key") == key]
        if not records:
            return None
        record = records[-1]
        with self._guard("The conversation could not be read"):
            answer = self.collection.find_one({"_id": oid}, {"messages": {"$elemMatch": {"turn": record["token"]}}})
        answers = [m for m in (answer or {}).get("messages") or [] if m.get("turn") == record["token"]]
        if not answers:  # reset meanwhile: the key went with the turn
            return None
        return StoredTurn(record["fingerprint"], record["transcript"], answers[0]["text"],
                          bytes(answers[0].get("audio") or b""), record.get("audio_error", ""))

    def reset(self, conversation_id: str) -> None:
        oid = _object_id(conversation_id)
        with self._guard("The conversation could not be reset"):
            result = self.collection.update_one({"_id": oid}, {"$set": {"messages": [], "turns": [], "size": 0}})
        if result.matched_count == 0:
            raise _not_found(conversation_id)

    def _live(self, key: str) -> dict:
        """The query for a turn record of `key` that has not expired."""
        return {"key": key, "at": {"$gte": time.time() - self.key_ttl_s}}

    def close(self) -> None:
        self.client.close()

    @contextmanager
    def _guard(self, what: str, at_start: bool = False) -> Iterator[None]:
        """pymongo's errors as the project's: AudioTooLarge for an oversized document,
        EngineUnavailable (with the fix) for everything else the server or network does.

        At start the message names the server (the operator reads it in the log: "Cannot
        start: …"); at run time it goes to clients, so it names only the kind of failure and
        the details (host:port, the server's words) go to the log."""
        errors = self._errors
        try:
            yield
        except errors.DocumentTooLarge:
            raise _too_large() from None
        except errors.OperationFailure as exc:
            if exc.code in _TOO_LARGE_CODES:
                raise _too_large() from None
            logger.warning("%s: MongoDB refused the operation: %s", what, exc)
            if exc.code in (13, 18):  # Unauthorized, AuthenticationFailed
                raise EngineUnavailable(
                    f"{what}: MongoDB refused the credentials. Check the user, password and authSource "
                    "in MONGODB_URI."
                ) from None
            raise EngineUnavailable(f"{what}: MongoDB refused the operation (code {exc.code}). Try again; "
                                    "the server log says why.") from None
        except errors.ConfigurationError as exc:
            logger.warning("%s: %s", what, exc)
            detail = f": {exc}" if at_start else ""
            raise EngineUnavailable(f"{what}{detail}. Check MONGODB_URI (mongodb://host:27017).") from None
        except errors.PyMongoError as exc:
            logger.warning("%s: %s", what, exc)
            reason = _reason(exc) if at_start else type(exc).__name__
            raise EngineUnavailable(
                f"{what} ({reason}): check that the server is running and that MONGODB_URI "
                "points at it (docker: `docker run -d -p 27017:27017 mongo`), then try again."
            ) from None


def _pymongo_errors():
    try:
        import pymongo.errors
    except ImportError:
        raise EngineUnavailable(
            "STORE=mongodb needs pymongo: pip install 'pymongo>=4.8' (it is in requirements.txt)."
        ) from None
    return pymongo.errors


def _connect(uri: str, timeout_s: float):
    import pymongo
    import pymongo.errors

    if not uri.startswith(("mongodb://", "mongodb+srv://")):
        raise EngineUnavailable(
            f"MONGODB_URI={_redact(uri)!r} is not a MongoDB URI: use mongodb://host:27017 "
            "or mongodb+srv://user:password@cluster/…"
        )
    options = {} if "serverselectiontimeoutms" in uri.lower() else {"serverSelectionTimeoutMS": int(timeout_s * 1000)}
    try:
        return pymongo.MongoClient(uri, connectTimeoutMS=int(timeout_s * 1000), **options)
    except (pymongo.errors.ConfigurationError, ValueError, TypeError) as exc:
        raise EngineUnavailable(
            f"MONGODB_URI={_redact(uri)!r} is not a usable MongoDB URI ({exc}): "
            "use mongodb://host:27017 or mongodb+srv://user:password@cluster/…"
        ) from None


def _reason(exc: Exception) -> str:
    """The first, useful part of a pymongo error (it goes on with a whole topology description)."""
    text = str(exc).split(" (configured timeouts")[0].split(", Timeout:")[0]
    return f"{type(exc).__name__}: {text[:200]}"


def _object_id(conversation_id: str):
    from bson import ObjectId

    return ObjectId(check_id(conversation_id))


def _document(message: Message) -> dict:
    from bson import Binary

    return {"role": message.role, "text": message.text, "audio": Binary(bytes(message.audio))}


def _size(documents: list[dict]) -> int:
    """BSON bytes these messages add to the array (each element also carries its index key)."""
    import bson

    return sum(len(bson.encode(d)) + 8 for d in documents)


def _not_found(conversation_id: str) -> NotFound:
    return NotFound(f"No conversation {conversation_id!r}: create one with /create first.")


def _too_large(detail: str = "") -> AudioTooLarge:
    return AudioTooLarge(
        f"The conversation would grow past MongoDB's 16 MB document limit{detail}: "
        "reset it or create a new conversation. Nothing was stored."
    )


def _redact(uri: str) -> str:
    """The URI without its password, for logs and error messages."""
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    credentials, host = rest.split("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
