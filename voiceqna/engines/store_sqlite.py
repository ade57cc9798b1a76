"""Store "sqlite": conversations in one SQLite file (WAL), shared safely by threads and processes.

Ids are 24 lower-case hex characters (`voiceqna.ports.new_id`). A turn — the user's message
and the answer — is written in one transaction, so no reader and no crash ever sees half of it.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import EngineUnavailable, NotFound
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

BUSY_TIMEOUT_S = 30
"""How long a writer waits for another (thread or process) to finish its write."""
SYNCHRONOUS = "FULL"
"""FULL: the WAL is synced at every COMMIT, so an answered turn survives a power cut or an OS
crash. NORMAL would sync only at checkpoints (the file stays consistent, but the last answered
turns could be lost); benchmarks/sqlite_synchronous.py measured FULL at about 5 ms more per turn
here, against seconds for the turn itself."""
MAX_IDLE = 8
"""Idle connections kept open for the next calls; more are closed when given back."""

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
CREATE TABLE IF NOT EXISTS turn_keys (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    answer_seq INTEGER NOT NULL,
    audio_error TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (conversation_id, key)
);
CREATE INDEX IF NOT EXISTS turn_keys_by_age ON turn_keys (created_at);
"""


def build(settings: Settings) -> "SQLiteStore":
    return SQLiteStore(settings.sqlite_path)


class SQLiteStore(BaseEngine, ConversationStore):
    """One SQLite file (WAL). Safe across threads and across processes sharing the file.

    Connections are pooled: each call takes one (or opens one), uses it on its thread alone and
    gives it back, so a thread that ends (every streamed turn has its own) leaves nothing open,
    and `close` closes every connection whichever thread opened it. SQLite's own failures
    (locked, full, I/O, corrupt) are EngineUnavailable; a write that fails anywhere, COMMIT
    included, is rolled back, so no connection keeps the write lock."""

    def __init__(self, path: Path, synchronous: str = SYNCHRONOUS, key_ttl_s: float = IDEMPOTENCY_TTL_S) -> None:
        """`synchronous`: SQLite's PRAGMA synchronous for every connection (see SYNCHRONOUS);
        `key_ttl_s`: how long idempotency keys are remembered."""
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous={synchronous!r}: use NORMAL, FULL or EXTRA")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.key_ttl_s = key_ttl_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._open: set[sqlite3.Connection] = set()
        with self._connection() as db, _failures("The conversation store cannot be opened"):
            db.executescript(_SCHEMA)
        self.description = "SQLite"  # public (GET /info): no file path
        logger.info("Conversation store: SQLite file %s", self.path)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this call alone: an idle one, or a new one."""
        with self._lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            with _failures("The conversation store cannot be opened"):
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False, factory=_Connection)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={self.synchronous}")
                db.execute("PRAGMA foreign_keys=ON")
            with self._lock:
                self._open.add(db)
        try:
            yield db
        finally:
            with self._lock:
                keep = db in self._open and len(self._idle) < MAX_IDLE and not db.in_transaction
                if keep:
                    self._idle.append(db)
                else:
                    self._open.discard(db)
            if not keep:
                db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error — a failed COMMIT included, so the
        connection never stays inside a write transaction (which would lock out every writer, in
        every process sharing the file): all of a write or none of it."""
        with self._connection() as db, _failures("The conversation store could not be written"):
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise

    def create(self, messages: Sequence[Message] = ()) -> str:
        conversation_id = new_id()
        with self._transaction() as db:
            db.execute("INSERT INTO conversations (id, created_at) VALUES (?, ?)", (conversation_id, time.time()))
            self._insert(db, conversation_id, 0, messages)
        return conversation_id

    def messages(self, conversation_id: str) -> list[Message]:
        with self._connection() as db, _failures("The conversation store could not be read"):
            self._require(db, conversation_id)
            rows = db.execute(
                "SELECT role, text, audio FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
        return [Message(role, text, bytes(audio)) for role, text, audio in rows]

    def history(self, conversation_id: str) -> list[TextMessage]:
        with self._connection() as db, _failures("The conversation store could not be read"):
            self._require(db, conversation_id)
            rows = db.execute(
                "SELECT role, text FROM messages WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
            ).fetchall()
        return [TextMessage(role, text) for role, text in rows]

    def append(self, conversation_id: str, messages: Sequence[Message],
               key: TurnKey | None = None) -> StoredTurn | None:
        with self._transaction() as db:
            self._require(db, conversation_id)
            if key is not None:
                earlier = self._keyed(db, conversation_id, key.key)
                if earlier is not None:
                    return earlier  # nothing written: BEGIN IMMEDIATE made this check and the write one step
                check_keyed_turn(messages)
                db.execute("DELETE FROM turn_keys WHERE created_at < ? OR (conversation_id = ? AND key = ?)",
                           (time.time() - self.key_ttl_s, conversation_id, key.key))  # expired keys are free again
            (last,) = db.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            self._insert(db, conversation_id, last + 1, messages)
            if key is not None:
                db.execute(
                    "INSERT INTO turn_keys (conversation_id, key, fingerprint, answer_seq, audio_error, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (conversation_id, key.key, key.fingerprint, last + len(messages), key.audio_error, time.time()),
                )
        return None

    def turn(self, conversation_id: str, key: str) -> StoredTurn | None:
        with self._connection() as db, _failures("The conversation store could not be read"):
            self._require(db, conversation_id)
            return self._keyed(db, conversation_id, key)

    def reset(self, conversation_id: str) -> None:
        with self._transaction() as db:
            self._require(db, conversation_id)
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("DELETE FROM turn_keys WHERE conversation_id = ?", (conversation_id,))

    def _keyed(self, db: sqlite3.Connection, conversation_id: str, key: str) -> StoredTurn | None:
        """The turn stored under `key` and not yet expired, read on `db` (inside its transaction, if any)."""
        row = db.execute(
            "SELECT k.fingerprint, k.audio_error, q.text, a.text, a.audio FROM turn_keys k "
            "JOIN messages a ON a.conversation_id = k.conversation_id AND a.seq = k.answer_seq "
            "JOIN messages q ON q.conversation_id = k.conversation_id AND q.seq = k.answer_seq - 1 "
            "WHERE k.conversation_id = ? AND k.key = ? AND k.created_at >= ?",
            (conversation_id, key, time.time() - self.key_ttl_s),
        ).fetchone()
        if row is None:
            return None
        fingerprint, audio_error, transcript, text, audio = row
        return StoredTurn(fingerprint, transcript, text, bytes(audio), audio_error)

    def close(self) -> None:
        """Close every connection (at shutdown), idle or not; a later call opens new ones."""
        with self._lock:
            connections, self._open, self._idle = list(self._open), set(), []
        for db in connections:
            try:
                db.close()
            except sqlite3.Error as exc:
                logger.warning("Closing a SQLite connection failed: %s", exc)

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


class _Connection(sqlite3.Connection):
    """The connection class the store opens (a test swaps it for one that fails on demand)."""


@contextmanager
def _failures(what: str) -> Iterator[None]:
    """SQLite's operational failures (locked, full, I/O, corrupt) as EngineUnavailable. Errors
    that mean a bug (a value SQLite cannot bind, a broken constraint) are left as they are."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
            raise  # IntegrityError, ProgrammingError, …: a bug, not the store failing
        logger.warning("%s: %s", what, exc)
        raise EngineUnavailable(f"{what} (SQLite: {exc}): try again; nothing was changed.") from None


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        try:
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:  # the connection is unusable: its next use reports it
            logger.warning("ROLLBACK failed: %s", exc)
