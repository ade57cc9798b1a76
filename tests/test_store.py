"""The SQLite store on a real file: ids, order, atomic turns, reopen."""

import sqlite3

import pytest

from voiceqna.errors import NotFound
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
