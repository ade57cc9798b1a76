"""Store "sqlite": conversations in one SQLite file (WAL), shared safely by threads and processes.

Ids are 24 lower-case hex characters (`voiceqna.ports.new_id`). A turn — the user's message
and the answer — is written in one transaction, so no reader and no crash ever sees half of it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

from voiceqna.config import Settings
from voiceqna.errors import EngineUnavailable, NotFound
from voiceqna.ports import ConversationStore, Message, TextMessage, check_id, new_id

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    audio BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
"""


def build(settings: Settings) -> "SQLiteStore":
    return SQLiteStore(settings.sqlite_path)


class SQLiteStore(ConversationStore):
    """One SQLite file (WAL). Safe across threads and across processes sharing the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)
        self.description = "SQLite"  # public (GET /info): no file path
        logger.info("Conversation store: SQLite file %s", self.path)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    def _transaction(self):
        return _Transaction(self._connect())

    def create(self, messages: Sequence[Message] = ()) -> str:
        conversation_id = new_id()
        with self._transaction() as db:
            db.execute("INSERT INTO conversations (id, created_at) VALUES (?, ?)", (conversation_id, time.time()))
            self._insert(db, conversation_id, 0, messages)
        return conversation_id

    def messages(self, conversation_id: str) -> list[Message]:
        db = self._connect()
        self._require(db, conversation_id)
        rows = db.execute(
            "SELECT role, text, audio FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        return [Message(role, text, bytes(audio)) for role, text, audio in rows]

    def history(self, conversation_id: str) -> list[TextMessage]:
        db = self._connect()
        self._require(db, conversation_id)
        rows = db.execute(
            "SELECT role, text FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        ).fetchall()
        return [TextMessage(role, text) for role, text in rows]

    def append(self, conversation_id: str, messages: Sequence[Message]) -> None:
        with self._transaction() as db:
            self._require(db, conversation_id)
            (last,) = db.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            self._insert(db, conversation_id, last + 1, messages)

    def reset(self, conversation_id: str) -> None:
        with self._transaction() as db:
            self._require(db, conversation_id)
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @staticmethod
    def _require(db: sqlite3.Connection, conversation_id: str) -> None:
        check_id(conversation_id)
        if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
            raise NotFound(f"No conversation {conversation_id!r}: create one with /create first.")

    @staticmethod
    def _insert(db: sqlite3.Connection, conversation_id: str, first_seq: int, messages: Sequence[Message]) -> None:
        now = time.time()
        db.executemany(
            "INSERT INTO messages (conversation_id, seq, role, text, audio, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(conversation_id, first_seq + i, m.role, m.text, m.audio, now) for i, m in enumerate(messages)],
        )


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error: all of a write or none of it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise EngineUnavailable(f"The conversation store is busy or unavailable ({exc}): try again.") from None
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
