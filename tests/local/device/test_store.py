"""Store-and-forward queues: order, priority, TTL expiry and counters, for both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.local.store import MemoryStore, Pending, SqliteStore, Store


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    s: Store = SqliteStore(tmp_path / "store.sqlite") if request.param == "sqlite" else MemoryStore()
    yield s
    s.close()


def _p(endpoint: str, n: int, priority: int = 0, ttl: float = 100) -> Pending:
    return Pending(endpoint, {"n": str(n)}, {"connectionModuleId": "sensor"}, f"body{n}".encode(), priority, ttl)


def test_fifo_per_endpoint_and_remove_counts_delivered(store: Store) -> None:
    store.append([_p("a", i) for i in range(5)] + [_p("b", 9)], now=0)
    got = store.peek("a", 10, now=1)
    assert [m.properties["n"] for m in got] == ["0", "1", "2", "3", "4"]
    assert got[0].body == b"body0" and got[0].system_properties == {"connectionModuleId": "sensor"}
    store.remove("a", [got[0].seq, got[1].seq])
    assert [m.properties["n"] for m in store.peek("a", 10, now=1)] == ["2", "3", "4"]
    assert [m.properties["n"] for m in store.peek("a", 2, now=1, exclude={got[2].seq})] == ["3", "4"]
    stats = store.stats()
    assert (stats["a"].pending, stats["a"].delivered, stats["a"].expired) == (3, 2, 0)
    assert stats["b"].pending == 1


def test_priority_before_arrival(store: Store) -> None:
    store.append([_p("a", 0, priority=5), _p("a", 1, priority=0), _p("a", 2, priority=5), _p("a", 3, priority=1)],
                 now=0)
    assert [m.properties["n"] for m in store.peek("a", 10, now=0)] == ["1", "3", "0", "2"]


def test_expired_messages_are_dropped_and_counted(store: Store) -> None:
    store.append([_p("a", 0, ttl=10), _p("a", 1, ttl=30), _p("a", 2, ttl=10)], now=100)
    assert len(store.peek("a", 10, now=105)) == 3
    live = store.peek("a", 10, now=111)
    assert [m.properties["n"] for m in live] == ["1"]
    assert store.stats()["a"].expired == 2
    assert live[0].expires_at == 130


def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.sqlite")
    s.append([_p("a", i) for i in range(3)], now=0)
    s.remove("a", [s.peek("a", 1, now=0)[0].seq])
    s.close()
    s2 = SqliteStore(tmp_path / "s.sqlite")
    assert [m.properties["n"] for m in s2.peek("a", 10, now=1)] == ["1", "2"]
    assert s2.stats()["a"].delivered == 1
    s2.close()
