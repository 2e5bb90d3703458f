"""Sessions (pure) and both session stores behind one set of tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgegen.local.mqtt.session import Session, SessionState
from edgegen.local.mqtt.store import MemorySessionStore, SessionStore, SqliteSessionStore, StoredMessage
from edgegen.local.mqtt.topics import Identity

ID = Identity("d", "m")
INPUTS = "devices/d/modules/m/inputs/#"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    made: SessionStore = MemorySessionStore() if request.param == "memory" else SqliteSessionStore(tmp_path / "s.db")
    yield made
    made.close()


def reopen(store: SessionStore) -> SessionStore:
    if isinstance(store, SqliteSessionStore):
        store.close()
        return SqliteSessionStore(store.path)
    return store


def test_store_round_trip(store: SessionStore) -> None:
    assert store.load("d/m") is None
    store.save_subscriptions("d/m", {INPUTS: 1})
    for seq in (3, 1, 2):
        store.add_message("d/m", StoredMessage(seq, f"t/{seq}".encode(), b"p", 1))
    store.remove_message("d/m", 2)
    store.flush()
    store = reopen(store)
    loaded = store.load("d/m")
    assert loaded is not None
    assert loaded.subscriptions == {INPUTS: 1}
    assert [(m.seq, m.topic) for m in loaded.messages] == [(1, b"t/1"), (3, b"t/3")]
    store.delete("d/m")
    assert store.load("d/m") is None
    store.close()


def test_session_queue_inflight_ack_and_redelivery(store: SessionStore) -> None:
    session = Session(ID, store, persistent=True, max_inflight=2)
    session.subscribe(INPUTS, 1)
    session.save_subscriptions()
    assert session.granted_qos("devices/d/modules/m/inputs/x/") == 1
    assert session.granted_qos("devices/d/modules/other/inputs/x/") is None
    for i in range(4):
        assert session.enqueue(f"t/{i}".encode(), str(i).encode(), 1)
    sent = list(session.take())
    assert [(m.payload, pid) for m, pid in sent] == [(b"0", 1), (b"1", 2)]  # window of 2
    assert list(session.take()) == []
    assert session.ack(1) and not session.ack(1)
    (third,) = list(session.take())
    assert third[0].payload == b"2"
    session.detach()  # connection lost with 1 and 2 unacknowledged
    assert session.state is SessionState.OFFLINE
    assert [m.payload for m in session.queue] == [b"1", b"2", b"3"]
    store.flush()
    restored = Session.restore(ID, reopen(store))
    assert restored is not None
    assert restored.subscriptions == {INPUTS: 1}
    assert [m.payload for m in restored.queue] == [b"1", b"2", b"3"]
    assert restored.enqueue(b"t/4", b"4", 1)
    assert [m.seq for m in restored.queue] == [2, 3, 4, 5]
    restored.store.close()


def test_clean_session_keeps_nothing(store: SessionStore) -> None:
    session = Session(ID, store, persistent=False)
    session.subscribe(INPUTS, 1)
    session.save_subscriptions()
    session.enqueue(b"t", b"x", 1)
    session.detach()
    assert session.state is SessionState.ENDED and not session.queue
    assert store.load("d/m") is None


def test_qos0_messages_are_not_kept_offline_and_queue_limit(store: SessionStore) -> None:
    session = Session(ID, store, persistent=True, max_queued=3)
    session.enqueue(b"t", b"a", 0)
    session.enqueue(b"t", b"b", 1)
    session.enqueue(b"t", b"c", 0)
    assert not session.enqueue(b"t", b"d", 1)  # full
    session.detach()
    assert [m.payload for m in session.queue] == [b"b"]
    session.discard()
    assert store.load("d/m") is None


def test_packet_ids_wrap_and_skip_those_in_flight() -> None:
    session = Session(ID, MemorySessionStore(), persistent=False, max_inflight=70000)
    session._next_pid = 65535
    for i in range(3):
        session.enqueue(b"t", bytes([i]), 1)
    pids = [pid for _, pid in session.take()]
    assert pids == [65535, 1, 2]


def test_sqlite_message_writes_wait_for_flush_and_cancel_out(tmp_path: Path) -> None:
    store = SqliteSessionStore(tmp_path / "s.db")
    reader = sqlite3.connect(tmp_path / "s.db")

    def on_disk() -> list[int]:
        store.load("sync")  # waits for the writer thread
        return [seq for (seq,) in reader.execute("SELECT seq FROM messages ORDER BY seq")]

    try:
        store.add_message("c", StoredMessage(1, b"t", b"a", 1))
        store.add_message("c", StoredMessage(2, b"t", b"b", 1))
        store.remove_message("c", 1)  # acknowledged before the flush: never written
        assert [seq for (seq,) in reader.execute("SELECT seq FROM messages")] == []
        store.flush()
        assert on_disk() == [2]
        store.remove_message("c", 2)
        store.add_message("c", StoredMessage(3, b"t", b"c", 1))
        store.flush()
        assert on_disk() == [3]
    finally:
        reader.close()
        store.close()
    again = SqliteSessionStore(tmp_path / "s.db")
    try:
        assert [m.seq for m in again.load("c").messages] == [3]  # type: ignore[union-attr]
    finally:
        again.close()
