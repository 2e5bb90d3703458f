"""The message store's batches, retention and space, and the live feed's window, without sockets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.local.hubstandin.feed import FEED_WINDOW, feed_session
from edgegen.local.hubstandin.livefeed import LiveFeed
from edgegen.local.hubstandin.store import MemoryHubStore, SqliteHubStore, StoredMessage
from edgegen.local.mqtt.topics import Identity


def message(i: int, ms: int, size: int = 100) -> StoredMessage:
    return StoredMessage(0, "d1", None, "2026-01-01T00:00:00Z", {"k": "v"}, {"i": str(i)}, b"x" * size,
                         enqueued_ms=ms)


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path: Path):
    s = MemoryHubStore() if request.param == "memory" else SqliteHubStore(tmp_path / "hub.sqlite")
    yield s
    s.close()


def test_batches_are_numbered_on_and_found_by_time(store) -> None:
    first = store.append_messages([message(i, 1000 + i) for i in range(5)])
    assert [m.seq for m in first] == [1, 2, 3, 4, 5]
    assert store.append_message(message(5, 2000)).seq == 6
    assert store.last_seq() == 6
    assert [m.seq for m in store.messages(2, 3)] == [3, 4, 5]
    assert store.first_seq_since(1003) == 4
    assert store.first_seq_since(5000) == 7  # nothing yet: the next one


def test_retention_by_age_then_size_keeps_numbering(store) -> None:
    store.append_messages([message(i, 1000 + i) for i in range(10)])
    assert store.prune(1002, 10**9) == 2  # enqueued before 1002
    each = store.messages(0, 1)[0].size
    assert store.prune(0, each * 3) == 5  # the oldest go until three fit
    assert [m.seq for m in store.messages(0, 100)] == [8, 9, 10]
    assert store.sizes()["messages"] == 3
    assert store.append_message(message(10, 3000)).seq == 11  # numbers are never reused


def test_space_is_given_back_after_a_backlog(tmp_path: Path) -> None:
    store = SqliteHubStore(tmp_path / "hub.sqlite")
    try:
        for _ in range(20):
            store.append_messages([message(i, 1000, 4000) for i in range(100)])
        big = store.sizes()["fileBytes"]
        assert big > 8_000_000
        store.prune(0, 10_000)
        assert store.give_back() > 0
        assert store.sizes()["fileBytes"] < big / 4
    finally:
        store.close()


def test_an_older_store_gains_enqueued_ms(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, module_id TEXT,
          enqueued_time TEXT NOT NULL, system_properties TEXT NOT NULL, properties TEXT NOT NULL, body BLOB NOT NULL);
        INSERT INTO messages (device_id, enqueued_time, system_properties, properties, body)
          VALUES ('d1', '2026-01-01T00:00:01Z', '{}', '{}', x'00');
    """)
    db.commit()
    db.close()
    store = SqliteHubStore(path)
    try:
        [old] = store.messages(0, 10)
        assert old.enqueued_ms == 1767225601000
        assert store.append_message(message(1, 1)).seq == 2
    finally:
        store.close()


class FakeGateway:
    def __init__(self) -> None:
        self.sent: list[tuple[int, dict]] = []
        self.online = True
        self.subscribed = True

    def deliver_input(self, identity, input_name, properties, payload, qos=1, tag=None) -> bool:
        if not self.online:
            return False
        self.sent.append((int(tag), json.loads(payload)))
        return True

    def is_subscribed(self, identity: Identity, topic: str) -> bool:
        return self.subscribed


def test_feed_window_holds_a_slow_monitor_back_and_resumes_after_acks() -> None:
    store = MemoryHubStore()
    gateway = FakeGateway()
    feed = LiveFeed(store, gateway)
    key = feed_session()
    feed.attach(key)
    total = FEED_WINDOW * 3
    for start in range(0, total, 100):
        feed.on_stored(store.append_messages([message(i, 1) for i in range(start, start + 100)]))
    assert len(gateway.sent) == FEED_WINDOW  # the rest waits in the store
    [stats] = feed.stats()
    assert stats["behind"] == total and stats["inFlight"] == FEED_WINDOW
    while len(gateway.sent) < total:
        feed.on_delivered(key, str(gateway.sent[-1][0]))
    assert [seq for seq, _ in gateway.sent] == list(range(1, total + 1))


def test_feed_reconnect_goes_on_after_the_last_ack_and_reports_a_retention_gap() -> None:
    store = MemoryHubStore()
    gateway = FakeGateway()
    feed = LiveFeed(store, gateway)
    key = feed_session()
    feed.attach(key)
    feed.on_stored(store.append_messages([message(i, 1000 + i) for i in range(10)]))
    feed.on_delivered(key, "4")
    gateway.online = False
    feed.detach(key)  # still subscribed (persistent session): remembered
    assert feed.stats()[0]["acknowledged"] == 4
    store.append_messages([message(i, 2000) for i in range(10)])
    store.prune(1008, 10**9)  # seq 5..8 go before the monitor read them
    gateway.online = True
    gateway.sent.clear()
    feed.attach(key)
    gap, *rest = gateway.sent
    assert gap == (8, {"seq": 8, "gap": {"first": 5, "last": 8}})
    assert [seq for seq, _ in rest] == list(range(9, 21))
    gateway.subscribed = False
    feed.detach(key)  # unsubscribed, then gone: forgotten
    assert feed.stats() == [] and store.load("monitor") == {}


def test_feed_sessions_start_where_asked() -> None:
    store = MemoryHubStore()
    store.append_messages([message(i, 1000 + i) for i in range(10)])
    store.prune(1003, 10**9)  # 1..3 are gone
    for session, first in ((feed_session(from_start=True), 4), (feed_session(since_ms=1006), 7),
                           (feed_session(), None), (feed_session(after_seq=8), 9)):
        gateway = FakeGateway()
        LiveFeed(store, gateway).attach(session)
        assert (gateway.sent[0][0] if gateway.sent else None) == first, session
