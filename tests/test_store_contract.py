"""One contract, every conversation store: SQLite (a real file), MongoDB through an
in-process fake of pymongo (mongomock: no MongoDB server can run here), and a real MongoDB
server when MONGODB_URI is set in the test environment (skipped with a message otherwise)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from voiceqna.errors import AudioTooLarge, NotFound
from voiceqna.engines.store_sqlite import SQLiteStore
from voiceqna.ports import ID_PATTERN, ConversationStore, Message, StoredTurn, TurnKey, new_id

AUDIO = bytes(range(256)) * 4  # every byte value, NULs included


@dataclass
class Backend:
    open: Callable[..., ConversationStore]
    """A new store object over the same file or database (a restart, or a second replica);
    keyword arguments go to the store (key_ttl_s)."""
    poison: list[Message]
    """A turn whose *second* message cannot be stored."""
    poison_error: type[Exception]


def sqlite_backend(tmp_path, request) -> Backend:
    path = tmp_path / "conversations.sqlite3"
    # A text that is not a string: the first row is inserted, the second fails mid-transaction.
    poison = [Message("user", "첫 번째"), Message("assistant", object())]  # type: ignore[arg-type]
    return Backend(lambda **options: SQLiteStore(path, **options), poison, sqlite3.Error)


def _mongo_poison() -> list[Message]:
    # The second message would push the document past MongoDB's 16 MB limit.
    return [Message("user", "첫 번째"), Message("assistant", "큰 소리", b"\x00" * (17 * 1024 * 1024))]


def fake_pymongo_backend(tmp_path, request) -> Backend:
    mongomock = pytest.importorskip("mongomock", reason="pip install -r requirements-dev.txt (mongomock)")
    from voiceqna.engines.store_mongo import MongoStore

    client = mongomock.MongoClient()  # one in-process fake server shared by every store object
    return Backend(lambda **options: MongoStore("mongodb://fake-pymongo", "voiceqna", "chats", client=client, **options),
                   _mongo_poison(), AudioTooLarge)


def real_mongodb_backend(tmp_path, request) -> Backend:
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("No MongoDB server: set MONGODB_URI (e.g. mongodb://localhost:27017) to run the contract on one")
    from voiceqna.engines.store_mongo import MongoStore

    database = f"voiceqna_test_{uuid.uuid4().hex[:12]}"
    stores: list[MongoStore] = []

    def open_store(**options) -> MongoStore:
        stores.append(MongoStore(uri, database, "chats", **options))
        return stores[-1]

    def drop() -> None:
        import pymongo

        with pymongo.MongoClient(uri) as client:
            client.drop_database(database)

    request.addfinalizer(drop)
    return Backend(open_store, _mongo_poison(), AudioTooLarge)


@pytest.fixture(params=[sqlite_backend, fake_pymongo_backend, real_mongodb_backend],
                ids=["sqlite", "fake-pymongo", "mongodb"])
def backend(request, tmp_path) -> Backend:
    return request.param(tmp_path, request)


@pytest.fixture
def store(backend):
    store = backend.open()
    yield store
    store.close()


def turn(tag: str) -> list[Message]:
    return [Message("user", f"질문 {tag}", AUDIO), Message("assistant", f"답변 {tag}", b"RIFF" + tag.encode())]


def test_create_empty(store):
    conversation_id = store.create()
    assert ID_PATTERN.fullmatch(conversation_id)
    assert store.messages(conversation_id) == []


def test_create_with_messages_keeps_text_roles_audio_and_order(store):
    given = [Message("system", "친절하게 답하세요."), Message("user", "안녕하세요", AUDIO), Message("assistant", "네, 안녕하세요!")]
    conversation_id = store.create(given)
    assert store.messages(conversation_id) == given


def test_ids_are_objectid_shaped_unique_and_random(store):
    before = int(time.time())
    ids = [store.create() for _ in range(100)]
    after = int(time.time())
    assert all(ID_PATTERN.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    # ObjectId form: the first 4 bytes are the creation time in seconds.
    assert all(before - 1 <= int(i[:8], 16) <= after + 1 for i in ids)
    # The other 8 bytes are random, not a counter (pymongo's ObjectId() would fail this).
    tails = [int(i[8:], 16) for i in ids]
    assert min(abs(a - b) for a, b in zip(tails, tails[1:])) > 2**32


def test_order_is_kept_over_many_appends(store):
    conversation_id = store.create([Message("user", "시작")])
    for n in range(60):
        store.append(conversation_id, turn(str(n)))
    got = store.messages(conversation_id)
    assert [m.text for m in got] == ["시작"] + [t for n in range(60) for t in (f"질문 {n}", f"답변 {n}")]
    assert [m.role for m in got[1:3]] == ["user", "assistant"]
    assert got[-1].audio == b"RIFF59"


def test_append_is_all_or_nothing(backend, store):
    conversation_id = store.create(turn("0"))
    with pytest.raises(backend.poison_error):
        store.append(conversation_id, backend.poison)
    assert store.messages(conversation_id) == turn("0")
    store.append(conversation_id, turn("1"))  # still usable, nothing left half-written
    assert store.messages(conversation_id) == turn("0") + turn("1")


def test_reset_empties_and_keeps_the_conversation(store):
    conversation_id = store.create(turn("0"))
    store.append(conversation_id, turn("1"))
    store.reset(conversation_id)
    assert store.messages(conversation_id) == []
    store.reset(conversation_id)  # resetting an empty conversation is fine
    store.append(conversation_id, turn("2"))
    assert store.messages(conversation_id) == turn("2")


def test_conversations_are_independent(store):
    first, second = store.create(turn("a")), store.create()
    store.append(second, turn("b"))
    store.reset(first)
    assert store.messages(first) == []
    assert store.messages(second) == turn("b")


@pytest.mark.parametrize("bad_id", [
    "unknown", "", "abc", "0" * 23, "0" * 25, "ABCDEF0123456789ABCDEF01", "zzzzzzzzzzzzzzzzzzzzzzzz",
    "../../etc/passwd", "60c98731e3c1aa3eb4b57d9c\n", None,
])
def test_unknown_and_malformed_ids_are_not_found(store, bad_id):
    bad_id = new_id() if bad_id == "unknown" else bad_id
    with pytest.raises(NotFound):
        store.messages(bad_id)
    with pytest.raises(NotFound):
        store.append(bad_id, turn("x"))
    with pytest.raises(NotFound):
        store.reset(bad_id)
    if bad_id and ID_PATTERN.fullmatch(bad_id):
        with pytest.raises(NotFound):  # the failed append created nothing
            store.messages(bad_id)


def test_reopen_keeps_everything(backend):
    store = backend.open()
    kept, emptied = store.create(turn("0")), store.create(turn("x"))
    store.append(kept, turn("1"))
    store.reset(emptied)
    store.close()
    reopened = backend.open()
    try:
        assert reopened.messages(kept) == turn("0") + turn("1")
        assert reopened.messages(emptied) == []
        reopened.append(kept, turn("2"))
        assert reopened.messages(kept)[-2:] == turn("2")
    finally:
        reopened.close()


def test_two_store_objects_share_one_conversation(backend):
    """Two replicas, each with its own store object, answering the same conversation in turn."""
    one, two = backend.open(), backend.open()
    try:
        conversation_id = one.create()
        for n in range(10):
            (one if n % 2 == 0 else two).append(conversation_id, turn(str(n)))
        expected = [m for n in range(10) for m in turn(str(n))]
        assert one.messages(conversation_id) == expected
        assert two.messages(conversation_id) == expected
    finally:
        one.close()
        two.close()


def test_concurrent_appends_keep_each_turn_whole(backend):
    threads, turns_each = 6, 15
    stores = [backend.open() for _ in range(2)]
    conversation_id = stores[0].create()
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for n in range(turns_each):
                stores[k % 2].append(conversation_id, turn(f"{k}-{n}"))
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert errors == []
        got = stores[1].messages(conversation_id)
        assert len(got) == threads * turns_each * 2
        pairs = [(got[i], got[i + 1]) for i in range(0, len(got), 2)]
        for question, answer in pairs:  # each turn's two messages are adjacent
            assert (question.role, answer.role) == ("user", "assistant")
            assert question.text.removeprefix("질문 ") == answer.text.removeprefix("답변 ")
        for k in range(threads):  # and each thread's turns are in the order it sent them
            mine = [q.text for q, _ in pairs if q.text.startswith(f"질문 {k}-")]
            assert mine == [f"질문 {k}-{n}" for n in range(turns_each)]
    finally:
        for s in stores:
            s.close()


# --- idempotency keys: a retried turn is stored once ---


def stored(tag: str, fingerprint: str = "f", audio_error: str = "") -> StoredTurn:
    """What turn(tag) looks like when it comes back under its key."""
    question, answer = turn(tag)
    return StoredTurn(fingerprint, question.text, answer.text, answer.audio, audio_error)


def test_a_turn_under_a_key_is_stored_once_and_given_back(store):
    conversation_id = store.create()
    assert store.turn(conversation_id, "k-1") is None
    assert store.append(conversation_id, turn("0"), TurnKey("k-1", "f", "no speech")) is None
    # The repeat (with whatever answer a second run made) writes nothing and gets the first one.
    assert store.append(conversation_id, turn("1"), TurnKey("k-1", "f")) == stored("0", audio_error="no speech")
    assert store.turn(conversation_id, "k-1") == stored("0", audio_error="no speech")
    assert store.messages(conversation_id) == turn("0")
    store.append(conversation_id, turn("2"), TurnKey("k-2", "g"))  # another key is another turn
    store.append(conversation_id, turn("3"))  # and no key is always a new turn
    assert store.messages(conversation_id) == turn("0") + turn("2") + turn("3")
    assert store.turn(conversation_id, "k-2") == stored("2", "g")


def test_keys_belong_to_one_conversation(store):
    first, second = store.create(), store.create()
    store.append(first, turn("a"), TurnKey("same", "f"))
    assert store.turn(second, "same") is None
    assert store.append(second, turn("b"), TurnKey("same", "f")) is None
    assert store.messages(first) == turn("a") and store.messages(second) == turn("b")


def test_a_reset_forgets_the_keys_with_the_turns(store):
    conversation_id = store.create()
    store.append(conversation_id, turn("0"), TurnKey("k", "f"))
    store.reset(conversation_id)
    assert store.turn(conversation_id, "k") is None
    assert store.append(conversation_id, turn("1"), TurnKey("k", "f")) is None
    assert store.messages(conversation_id) == turn("1")


def test_a_key_is_remembered_for_its_time_to_live_only(backend):
    store = backend.open(key_ttl_s=1.0)
    try:
        conversation_id = store.create()
        store.append(conversation_id, turn("0"), TurnKey("k", "f"))
        assert store.turn(conversation_id, "k") == stored("0")
        time.sleep(1.2)  # waiting out the time to live, not timing anything
        assert store.turn(conversation_id, "k") is None
        assert store.append(conversation_id, turn("1"), TurnKey("k", "f")) is None  # a new turn
        assert store.messages(conversation_id) == turn("0") + turn("1")
        assert store.turn(conversation_id, "k") == stored("1")
    finally:
        store.close()


def test_keys_of_unknown_conversations_are_not_found(store):
    with pytest.raises(NotFound):
        store.turn(new_id(), "k")
    with pytest.raises(NotFound):
        store.append(new_id(), turn("x"), TurnKey("k", "f"))


def test_concurrent_repeats_on_two_replicas_store_one_turn(backend):
    """Eight retries of one request race through two store objects (two replicas): exactly one
    is stored, and every other gets that one back."""
    stores = [backend.open() for _ in range(2)]
    conversation_id = stores[0].create()
    start = threading.Barrier(8)
    answers: dict[int, object] = {}

    def retry(k: int) -> None:
        start.wait()
        try:
            answers[k] = stores[k % 2].append(conversation_id, turn(f"try {k}"), TurnKey("one-key", "f"))
        except BaseException as exc:  # reported below, not lost in the thread
            answers[k] = exc

    workers = [threading.Thread(target=retry, args=(k,)) for k in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        kept = stores[1].messages(conversation_id)
        assert len(kept) == 2, kept
        (winner,) = [k for k, answer in answers.items() if answer is None]
        assert kept == turn(f"try {winner}")
        assert all(answer == stored(f"try {winner}") for k, answer in answers.items() if k != winner), answers
    finally:
        for s in stores:
            s.close()
