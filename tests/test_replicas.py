"""Two app processes (two replicas) sharing one store serve one conversation: real
`python app.py --api-only` servers on loopback, real HTTP, a real SQLite file (and a real
MongoDB server when MONGODB_URI is set in the test environment)."""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
import requests

from voiceqna.evaluation.app_process import start_app, stop, wait_until_ready

pytestmark = pytest.mark.server  # every test here starts app processes (Replica)

STARTUP_DEADLINE_S = 180  # a generous limit to report a server that never answers, not a timing check


class Replica:
    """One app process (voiceqna.evaluation.app_process), started now, waited for by wait_ready."""

    def __init__(self, name: str, data_dir: Path, settings: dict[str, str], log_dir: Path) -> None:
        self.app = start_app(data_dir, ["--api-only"], settings, log_path=log_dir / f"{name}.log")
        self.url, self.process, self.log = self.app.url, self.app.process, self.app.log_path

    def wait_ready(self) -> None:
        wait_until_ready(self.app, start_timeout_s=STARTUP_DEADLINE_S)

    def send(self, conversation_id: str, text: str) -> dict:
        response = requests.post(f"{self.url}/send/text/{conversation_id}", json={"message": text, "role": "user"},
                                 timeout=120)
        assert response.status_code == 200, (response.status_code, response.text, self.log.read_text()[-2000:])
        return response.json()

    def conversation(self, conversation_id: str) -> list[dict]:
        response = requests.get(f"{self.url}/{conversation_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def stop(self) -> None:
        stop(self.process)


def store_env(kind: str, tmp_path: Path) -> dict[str, str]:
    if kind == "sqlite":
        return {"STORE": "sqlite"}
    uri = os.environ.get("MONGODB_URI")
    if not uri:
        pytest.skip("No MongoDB server: set MONGODB_URI (e.g. mongodb://localhost:27017) to run two replicas on it")
    return {"STORE": "mongodb", "MONGODB_URI": uri, "MONGODB_DATABASE": f"voiceqna_test_{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module", params=["sqlite", "mongodb"])
def replicas(request, tmp_path_factory):
    """Two replicas on one fresh store, shared by this module's tests (each uses its own conversations)."""
    tmp_path = tmp_path_factory.mktemp(f"replicas-{request.param}")
    settings = {"CHAT_ENGINE": "offline", "TTS_ENGINE": "espeak", **store_env(request.param, tmp_path)}
    data_dir = tmp_path / "data"  # one shared data folder: one SQLite file
    pair = [Replica(name, data_dir, settings, tmp_path) for name in ("a", "b")]  # started together, on one fresh store
    try:
        for replica in pair:
            replica.wait_ready()
        yield pair
    finally:
        for replica in pair:
            replica.stop()
        if settings["STORE"] == "mongodb":
            import pymongo

            pymongo.MongoClient(settings["MONGODB_URI"]).drop_database(settings["MONGODB_DATABASE"])


def assert_whole_turns(messages: list[dict]) -> list[str]:
    """Every question is followed by its answer; returns the questions in stored order."""
    assert len(messages) % 2 == 0
    questions = []
    for question, answer in zip(messages[::2], messages[1::2]):
        assert (question["role"], answer["role"]) == ("user", "assistant"), (question, answer)
        assert answer["message"]
        assert base64.b64decode(answer["audio"])[:4] == b"RIFF"
        questions.append(question["message"])
    return questions


def test_two_replicas_serve_one_conversation_alternately_and_concurrently(replicas):
    a, b = replicas
    created = requests.post(f"{a.url}/create", json={}, timeout=30)
    assert created.status_code == 201
    conversation_id = created.json()["id"]

    # Alternating: each replica sees what the other stored, in order.
    asked = []
    for n in range(8):
        here, there = (a, b) if n % 2 == 0 else (b, a)
        asked.append(f"질문 {n}: 지금 몇 시예요?" if n % 3 == 0 else f"질문 {n}: 안녕하세요")
        reply = here.send(conversation_id, asked[-1])
        seen = there.conversation(conversation_id)
        assert assert_whole_turns(seen) == asked
        assert seen[-1]["message"] == reply["text"]

    # Concurrent: eight clients, each sending three questions, alternating replicas.
    def client(k: int) -> list[str]:
        sent = []
        for i in range(3):
            sent.append(f"동시 {k}-{i}")
            (a if (k + i) % 2 == 0 else b).send(conversation_id, sent[-1])
        return sent

    with ThreadPoolExecutor(max_workers=8) as pool:
        sent_by_client = list(pool.map(client, range(8)))

    final_a, final_b = a.conversation(conversation_id), b.conversation(conversation_id)
    assert final_a == final_b
    questions = assert_whole_turns(final_a)
    assert questions[:8] == asked  # nothing earlier moved
    concurrent = questions[8:]
    assert sorted(concurrent) == sorted(q for sent in sent_by_client for q in sent)  # nothing lost, nothing doubled
    for sent in sent_by_client:  # each client's questions in the order it asked them
        assert [q for q in concurrent if q in sent] == sent

    # A reset through one replica is seen by the other, and the conversation goes on.
    assert requests.post(f"{b.url}/reset/{conversation_id}", timeout=30).status_code == 200
    assert a.conversation(conversation_id) == []
    a.send(conversation_id, "다시 시작")
    assert assert_whole_turns(b.conversation(conversation_id)) == ["다시 시작"]


def _append_turns(path: str, conversation_id: str, worker: int, turns: int) -> None:
    from voiceqna.engines.store_sqlite import SQLiteStore
    from voiceqna.ports import Message

    store = SQLiteStore(Path(path))  # each process opens the (maybe brand-new) file itself
    for n in range(turns):
        store.append(conversation_id, [Message("user", f"{worker}-{n}"), Message("assistant", f"{worker}-{n}")])
    store.close()


def test_processes_writing_one_sqlite_file_keep_every_turn_whole(tmp_path):
    """The store under the replicas: WAL, BEGIN IMMEDIATE and a busy timeout across processes."""
    import multiprocessing

    from voiceqna.engines.store_sqlite import SQLiteStore

    path = tmp_path / "shared.sqlite3"
    store = SQLiteStore(path)
    conversation_id = store.create()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_turns, args=(str(path), conversation_id, k, 200)) for k in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    messages = store.messages(conversation_id)
    assert len(messages) == 4 * 200 * 2
    pairs = list(zip(messages[::2], messages[1::2]))
    assert all(q.role == "user" and a.role == "assistant" and q.text == a.text for q, a in pairs)
    for k in range(4):
        assert [q.text for q, _ in pairs if q.text.startswith(f"{k}-")] == [f"{k}-{n}" for n in range(200)]
    with closing(sqlite3.connect(path)) as db:  # WAL is kept in the file: readers never block the writer
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_retry_that_reaches_the_other_replica_stores_nothing_new(replicas):
    """A phone retries (same Idempotency-Key) and the load balancer sends the retry elsewhere;
    then a burst of retries hits both replicas at once: one turn per key, one answer for all."""
    a, b = replicas
    conversation_id = requests.post(f"{a.url}/create", json={}, timeout=30).json()["id"]

    def send(replica: Replica, key: str, text: str) -> dict:
        response = requests.post(f"{replica.url}/send/text/{conversation_id}", json={"message": text},
                                 headers={"Idempotency-Key": key}, timeout=120)
        assert response.status_code == 200, (response.text, replica.log.read_text()[-2000:])
        return response.json()

    first = send(a, "retry-1", "안녕하세요")
    again = send(b, "retry-1", "안녕하세요")
    assert again["repeated"] and (again["text"], again["audio"]) == (first["text"], first["audio"])
    assert assert_whole_turns(b.conversation(conversation_id)) == ["안녕하세요"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        burst = list(pool.map(lambda k: send((a, b)[k % 2], "retry-2", "지금 몇 시예요?"), range(8)))
    assert sorted(r["repeated"] for r in burst) == [False] + [True] * 7
    assert len({(r["text"], r["audio"]) for r in burst}) == 1
    assert assert_whole_turns(a.conversation(conversation_id)) == ["안녕하세요", "지금 몇 시예요?"]
