"""The device's ``$upstream`` log is bounded by age and size, and gives the space back; the router's store and
the session store give back what a drained backlog left free."""

from __future__ import annotations

import time
from pathlib import Path

from edgegen.common.retention import Retention
from edgegen.local.mqtt.store import SqliteSessionStore, StoredMessage
from edgegen.local.store import Pending, SqliteStore
from edgegen.local.upstream import LocalUpstream, UpstreamMessage


def msg(i: int, enqueued: float, size: int = 2000) -> UpstreamMessage:
    return UpstreamMessage("dev", "sensor", {"i": str(i)}, {"messageId": str(i)}, b"x" * size, enqueued)


def test_upstream_retention_by_age_then_size_and_space_given_back(tmp_path: Path) -> None:
    log = LocalUpstream(tmp_path / "upstream.sqlite")
    try:
        now = time.time()
        log.append([msg(i, now - 7200) for i in range(100)])  # two hours old
        log.append([msg(i, now) for i in range(100, 2100)])
        grown = log.sizes()["fileBytes"]
        r = Retention(days=1 / 24, max_bytes=100 * 2100)  # one hour, about 100 messages
        removed = log.prune(r.cutoff_ms(now), r.max_bytes)
        sizes = log.sizes()
        kept = sizes["messages"]
        assert removed == 2100 - kept and 100 <= kept <= 105  # the old ones, then the oldest until 210 kB fit
        assert log.read(0, 1)[0][0] == 2100 - kept + 1
        assert r.max_bytes - 2100 < sizes["messageBytes"] <= r.max_bytes
        assert log.give_back() > 0
        assert log.sizes()["fileBytes"] < grown / 4
        log.append([msg(9, now)])
        assert log.read(2100, 5)[0][0] == 2101  # numbers go on
    finally:
        log.close()


def test_router_and_session_stores_shrink_after_a_backlog_drains(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.sqlite")
    sessions = SqliteSessionStore(tmp_path / "sessions.sqlite")
    try:
        ids = store.append([Pending("ep", {}, {}, b"y" * 4000) for _ in range(2000)])
        for i in range(2000):
            sessions.add_message("m1", StoredMessage(i, b"t", b"z" * 4000, 1))
        sessions.flush()
        full = store.path.stat().st_size
        store.remove("ep", ids)
        for i in range(2000):
            sessions.remove_message("m1", i)
        sessions.flush()
        assert store.give_back() > 0 and sessions.give_back() > 0
        assert store.path.stat().st_size < full / 4
        assert sessions.path.stat().st_size < 2_000_000
    finally:
        store.close()
        sessions.close()
