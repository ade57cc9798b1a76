"""The SQLite store on a real file: ids, order, atomic turns, reopen."""

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from voiceqna.engines import store_sqlite
from voiceqna.engines.chat_knowledge import KnowledgeBase
from voiceqna.engines.chat_offline import OfflineChatEngine
from voiceqna.engines.tts_none import SilentSynthesizer
from voiceqna.errors import EngineUnavailable, NotFound
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.ports import ID_PATTERN, Message


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "conversations.sqlite3"


def test_create_get_append_reset(path):
    store = SQLiteStore(path)
    cid = store.create([Message("user", "Hello", b"Hello"), Message("assistant", "How are you?", b"")])
    assert ID_PATTERN.match(cid)
    store.append(cid, [Message("user", "질문"), Message("assistant", "대답", b"RIFF")])
    assert [(m.role, m.text, m.audio) for m in store.messages(cid)] == [
        ("user", "Hello", b"Hello"),
        ("assistant", "How are you?", b""),
        ("user", "질문", b""),
        ("assistant", "대답", b"RIFF"),
    ]
    store.reset(cid)
    assert store.messages(cid) == []
    store.append(cid, [Message("user", "다시")])
    assert [m.text for m in store.messages(cid)] == ["다시"]


def test_ids_are_unique_and_not_sequential(path):
    store = SQLiteStore(path)
    ids = [store.create() for _ in range(50)]
    assert len(set(ids)) == 50
    assert len({i[8:] for i in ids}) == 50  # the random part differs, not just a counter
    assert not all(int(b, 16) - int(a, 16) == 1 for a, b in zip(ids, ids[1:]))


def test_conversations_survive_a_reopen(path):
    store = SQLiteStore(path)
    cid = store.create([Message("user", "안녕")])
    store.append(cid, [Message("user", "하나"), Message("assistant", "둘")])
    store.close()
    again = SQLiteStore(path)
    assert [m.text for m in again.messages(cid)] == ["안녕", "하나", "둘"]


@pytest.mark.parametrize("bad", ["0" * 24, "not-an-id", "../../etc/passwd", "1' OR '1'='1", "", "A" * 24])
def test_unknown_or_malformed_ids(path, bad):
    store = SQLiteStore(path)
    for call in (store.messages, store.reset, lambda i: store.append(i, [Message("user", "x")])):
        with pytest.raises(NotFound):
            call(bad)


def test_a_failing_turn_write_leaves_nothing_behind(path):
    store = SQLiteStore(path)
    cid = store.create([Message("user", "처음")])
    # The second message cannot be stored (text must be a string): the first must not stay either.
    with pytest.raises(sqlite3.Error):
        store.append(cid, [Message("user", "질문"), Message("assistant", object())])
    assert [m.text for m in store.messages(cid)] == ["처음"]
    store.append(cid, [Message("user", "질문"), Message("assistant", "대답")])
    assert [m.text for m in store.messages(cid)] == ["처음", "질문", "대답"]


class BusyCommitConnection(store_sqlite._Connection):
    """A FAKE: COMMIT fails once the way SQLITE_BUSY does, leaving the transaction open (what
    SQLite documents for a busy COMMIT); a real lock that does this on demand cannot be made here."""

    failures = 1

    def execute(self, sql, *args):
        if sql == "COMMIT" and BusyCommitConnection.failures:
            BusyCommitConnection.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().execute(sql, *args)


def test_a_failed_commit_rolls_back_and_blocks_no_writer_fake_busy_commit(path, monkeypatch):
    store = SQLiteStore(path)
    cid = store.create([Message("user", "처음")])
    store.close()
    monkeypatch.setattr(store_sqlite, "_Connection", BusyCommitConnection)
    BusyCommitConnection.failures = 1
    store = SQLiteStore(path)
    with pytest.raises(EngineUnavailable, match="try again"):
        store.append(cid, [Message("user", "질문"), Message("assistant", "대답")])
    # Another writer (a second replica) is not locked out, and neither is this store.
    other = sqlite3.connect(path, timeout=1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    assert [m.text for m in store.messages(cid)] == ["처음"]  # nothing of the failed turn
    store.append(cid, [Message("user", "다시"), Message("assistant", "네")])
    assert [m.text for m in SQLiteStore(path).messages(cid)] == ["처음", "다시", "네"]


class FullDiskConnection(store_sqlite._Connection):
    """The real SQLite with a real size cap (PRAGMA max_page_count): a write that needs more pages
    fails with SQLITE_FULL exactly as on a full disk."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        (pages,) = self.execute("PRAGMA page_count").fetchone()
        self.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_is_503_and_stores_nothing(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from voiceqna.api import create_api
    from voiceqna.service import ChatService

    settings = make_settings(tmp_path / "data")
    cid = SQLiteStore(settings.sqlite_path).create([Message("user", "처음")])
    monkeypatch.setattr(store_sqlite, "_Connection", FullDiskConnection)
    store = SQLiteStore(settings.sqlite_path)
    service = ChatService(None, OfflineChatEngine(KnowledgeBase.load(settings.knowledge_base)), SilentSynthesizer(), store)
    client = TestClient(create_api(service, settings), raise_server_exceptions=False)
    response = client.post(f"/send/text/{cid}", json={"message": "가" * 1500})
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "EngineUnavailable" and "store" in response.json()["error"]
    assert str(settings.data_dir) not in response.text
    monkeypatch.undo()
    assert [m.text for m in SQLiteStore(settings.sqlite_path).messages(cid)] == ["처음"]


def test_close_closes_the_connections_of_every_thread(path):
    """At shutdown ChatService.close() calls store.close() on one thread, but every thread that
    served a request opened its own connection: all are closed (SQLite then folds the WAL back
    into the file and removes it), and the store still works afterwards."""
    store = SQLiteStore(path)
    cid = store.create()

    def use() -> None:
        store.append(cid, [Message("user", "질문"), Message("assistant", "대답")])

    threads = [threading.Thread(target=use) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal = path.with_name(path.name + "-wal")
    assert wal.exists()
    store.close()
    assert not wal.exists()  # the last connection closed: every thread's one
    assert len(store.messages(cid)) == 8
    store.close()


def test_a_thread_that_ends_takes_its_connection_with_it(path):
    """Each streamed turn runs on a thread of its own: the store must not keep one open file per
    turn that ever ran."""
    store = SQLiteStore(path)
    cid = store.create()
    for _ in range(40):
        thread = threading.Thread(target=store.history, args=(cid,))
        thread.start()
        thread.join()
    assert open_files_of(path) <= 1  # the one idle connection kept for the next call


def open_files_of(path: Path) -> int:
    """How many file descriptors of this process point at `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    return count
