"""What is particular to the MongoDB store: the document layout, one update per write, the
16 MB document limit, and clear errors when the server cannot be reached.

No MongoDB server can run here: "fake pymongo" tests use mongomock, an in-process fake;
the connection tests use the real pymongo against a closed loopback port."""

from __future__ import annotations

import sys

import pytest
from bson import Binary, ObjectId

from tests.conftest import make_settings
from tests.live_server import free_port
from voiceqna.errors import AudioTooLarge, EngineUnavailable
from voiceqna.ports import Message

mongomock = pytest.importorskip("mongomock", reason="pip install -r requirements-dev.txt (mongomock)")
import pymongo.errors  # noqa: E402

from voiceqna.engines.store_mongo import MESSAGES_BUDGET, MongoStore  # noqa: E402

MB = 1024 * 1024


class RecordingCollection:
    """Wraps the fake collection and records every call, to count the writes of one operation."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self.calls.append((name, args))
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def fake_client():
    return mongomock.MongoClient()


@pytest.fixture
def store(fake_client):
    return MongoStore("mongodb://fake-pymongo", "voiceqna", "chats", client=fake_client)


def closed_port() -> int:
    return free_port()  # nothing listens there once the probe socket is closed


def test_fake_pymongo_one_document_per_conversation(store, fake_client):
    conversation_id = store.create([Message("user", "안녕하세요", b"RIFF\x00\x01")])
    store.append(conversation_id, [Message("user", "몇 시예요?"), Message("assistant", "세 시예요.", b"RIFF")])
    documents = list(fake_client.voiceqna.chats.find())
    assert len(documents) == 1
    document = documents[0]
    assert document["_id"] == ObjectId(conversation_id)
    assert document["created_at"].year >= 2024
    assert [m["text"] for m in document["messages"]] == ["안녕하세요", "몇 시예요?", "세 시예요."]
    assert document["messages"][0]["audio"] == Binary(b"RIFF\x00\x01")
    assert 0 < document["size"] < 1000


def test_fake_pymongo_a_turn_and_a_reset_are_one_update_each(store):
    conversation_id = store.create()
    store.collection = recorder = RecordingCollection(store.collection)
    store.append(conversation_id, [Message("user", "질문"), Message("assistant", "답변")])
    writes = [(name, args) for name, args in recorder.calls if name != "find_one"]
    assert [name for name, _ in writes] == ["update_one"]
    assert [m["text"] for m in writes[0][1][1]["$push"]["messages"]["$each"]] == ["질문", "답변"]
    recorder.calls.clear()
    store.reset(conversation_id)
    assert [(name, args[1]) for name, args in recorder.calls] == [("update_one", {"$set": {"messages": [], "turns": [], "size": 0}})]


def test_fake_pymongo_full_conversation_refuses_a_turn_whole_until_reset(store):
    conversation_id = store.create([Message("user", "긴 녹음", b"\x01" * (10 * MB))])
    with pytest.raises(AudioTooLarge, match="16 MB.*reset it or create a new conversation"):
        store.append(conversation_id, [Message("user", "또 긴 녹음", b"\x02" * (4 * MB)),
                                       Message("assistant", "답변", b"\x03" * (3 * MB))])
    assert [m.text for m in store.messages(conversation_id)] == ["긴 녹음"]
    store.append(conversation_id, [Message("user", "짧은 질문", b"\x04" * MB)])  # what still fits is kept
    store.reset(conversation_id)
    store.append(conversation_id, [Message("user", "또 긴 녹음", b"\x02" * (4 * MB)),
                                   Message("assistant", "답변", b"\x03" * (3 * MB))])
    assert [m.text for m in store.messages(conversation_id)] == ["또 긴 녹음", "답변"]


def test_fake_pymongo_create_over_the_limit_stores_nothing(store, fake_client):
    with pytest.raises(AudioTooLarge, match="16 MB document limit.*send less"):
        store.create([Message("user", "너무 긴 녹음", b"\x00" * (MESSAGES_BUDGET + 1))])
    assert fake_client.voiceqna.chats.count_documents({}) == 0


def test_fake_pymongo_server_refusing_a_large_document_is_audio_too_large(store):
    """A real server enforces 16 MiB itself (code 17419 for an update); the error stays clear."""
    conversation_id = store.create()

    def refuse(*args, **kwargs):
        raise pymongo.errors.WriteError("Resulting document after update is larger than 16777216", 17419)

    store.collection = RecordingCollection(store.collection)
    store.collection.update_one = refuse
    with pytest.raises(AudioTooLarge, match="reset it or create a new conversation"):
        store.append(conversation_id, [Message("user", "질문")])


def test_fake_pymongo_lost_connection_mid_turn_is_engine_unavailable_and_loses_nothing(store):
    conversation_id = store.create([Message("user", "처음")])
    real = store.collection

    def drop_connection(*args, **kwargs):
        raise pymongo.errors.AutoReconnect("connection closed")

    store.collection = RecordingCollection(real)
    store.collection.update_one = drop_connection
    with pytest.raises(EngineUnavailable, match="try again"):
        store.append(conversation_id, [Message("user", "질문"), Message("assistant", "답변")])
    store.collection = real
    assert store.messages(conversation_id) == [Message("user", "처음")]


def test_fake_pymongo_indexes_are_created_at_start(fake_client):
    MongoStore("mongodb://fake-pymongo", "voiceqna", "chats", client=fake_client)
    assert "created_at_1" in fake_client.voiceqna.chats.index_information()


def test_unreachable_server_fails_at_start_with_the_fix():
    port = closed_port()
    with pytest.raises(EngineUnavailable) as caught:
        MongoStore(f"mongodb://127.0.0.1:{port}", timeout_s=0.5)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "Connection refused" in message
    assert "MONGODB_URI" in message and "docker run" in message
    assert "Topology" not in message  # the useful first line, not pymongo's whole dump


def test_app_with_store_mongodb_fails_at_start_when_the_server_is_down(tmp_path):
    from voiceqna.compose import build_store

    uri = f"mongodb://127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"
    settings = make_settings(tmp_path, store="mongodb", mongodb_uri=uri)
    with pytest.raises(EngineUnavailable, match="cannot be reached"):
        build_store(settings)


def test_a_password_never_appears_in_errors():
    uri = f"mongodb://quiz:s3cret-pw@127.0.0.1:{closed_port()}/?serverSelectionTimeoutMS=300"
    with pytest.raises(EngineUnavailable) as caught:
        MongoStore(uri)
    assert "s3cret-pw" not in str(caught.value)
    assert "quiz:***@127.0.0.1" in str(caught.value)


@pytest.mark.parametrize("uri", ["localhost:27017", "http://localhost:27017", "mongodb://"])
def test_not_a_mongodb_uri_is_a_clear_error(uri):
    with pytest.raises(EngineUnavailable, match="MONGODB_URI"):
        MongoStore(uri, timeout_s=0.3)


def test_missing_pymongo_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymongo", None)
    monkeypatch.setitem(sys.modules, "pymongo.errors", None)
    with pytest.raises(EngineUnavailable, match="pip install"):
        MongoStore("mongodb://localhost:27017")


def test_server_lost_at_run_time_is_503_without_its_address_fake_pymongo(tmp_path):
    """The store started (on the fake), then its server went away: the REST answer says 503 and
    what to do, but never the server's host:port (that goes to the log only)."""
    from fastapi.testclient import TestClient

    from voiceqna.api import create_api
    from voiceqna.service import ChatService

    store = MongoStore("mongodb://fake-pymongo", "voiceqna", "chats", client=mongomock.MongoClient())
    conversation_id = store.create([Message("user", "처음")])
    port = closed_port()
    gone = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}", serverSelectionTimeoutMS=300, connectTimeoutMS=300)
    store.collection = gone["voiceqna"]["chats"]  # the real pymongo, against a port where nothing listens
    try:
        client = TestClient(create_api(ChatService(None, None, None, store), make_settings(tmp_path)))
        for response in (client.get(f"/{conversation_id}"), client.post("/create", json={}),
                         client.post(f"/send/text/{conversation_id}", json={"message": "안녕"}),
                         client.post(f"/reset/{conversation_id}")):
            assert response.status_code == 503, response.text
            body = response.json()
            assert body["type"] == "EngineUnavailable" and "MONGODB_URI" in body["error"]
            assert str(port) not in response.text and "127.0.0.1" not in response.text, body["error"]
    finally:
        gone.close()
