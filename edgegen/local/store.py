"""Store-and-forward: one ordered queue per endpoint, with time-to-live and counters.

Every routed message is written here before the edge hub acknowledges it (PUBACK), and removed only when the
endpoint has taken it (the module's PUBACK, or the upstream sink's write). Order within an endpoint is route
priority first (0 is best, as edgeHub orders them), then arrival. A message whose time-to-live has passed is
dropped when it is next looked at and counted as expired.

``SqliteStore`` is durable (WAL journal); ``MemoryStore`` has the same behaviour without a file.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edgegen.common.private import open_private_sqlite
from edgegen.common.sqlitespace import give_back, prepare

__all__ = ["EndpointStats", "MemoryStore", "Pending", "QueuedMessage", "SqliteStore", "Store"]


@dataclass(frozen=True)
class Pending:
    """A message to enqueue for one endpoint."""

    endpoint: str
    properties: Mapping[str, str]
    system_properties: Mapping[str, str]
    body: bytes
    priority: int = 2_000_000_000  # edgeHub's default priority for routes without one
    ttl_secs: float = 7200.0


@dataclass(frozen=True)
class QueuedMessage:
    seq: int
    endpoint: str
    properties: Mapping[str, str]
    system_properties: Mapping[str, str]
    body: bytes
    priority: int
    enqueued_at: float
    expires_at: float


@dataclass
class EndpointStats:
    pending: int = 0
    delivered: int = 0
    expired: int = 0


class Store(Protocol):
    """What the router needs from a store. Times are ``time.time()`` seconds; ``now`` is for tests."""

    def append(self, items: Sequence[Pending], now: float | None = None) -> list[int]:
        """Enqueue all ``items`` in one durable step; return their sequence numbers."""
        ...

    def peek(
        self, endpoint: str, limit: int, now: float | None = None, exclude: Collection[int] = ()
    ) -> list[QueuedMessage]:
        """The next ``limit`` live messages of ``endpoint`` in delivery order; expired ones are dropped and counted.

        ``exclude`` skips messages already handed out and not yet acknowledged (in flight).
        """
        ...

    def remove(self, endpoint: str, seqs: Iterable[int]) -> None:
        """Delivered: forget these messages and count them as delivered."""
        ...

    def stats(self) -> dict[str, EndpointStats]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  endpoint TEXT NOT NULL,
  priority INTEGER NOT NULL,
  enqueued_at REAL NOT NULL,
  expires_at REAL NOT NULL,
  properties TEXT NOT NULL,
  system_properties TEXT NOT NULL,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_order ON messages (endpoint, priority, seq);
CREATE TABLE IF NOT EXISTS counters (
  endpoint TEXT PRIMARY KEY,
  delivered INTEGER NOT NULL DEFAULT 0,
  expired INTEGER NOT NULL DEFAULT 0
);
"""


class SqliteStore:
    """A durable store in one SQLite file (WAL; a commit per append, so an acknowledged message survives a crash)."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self._db = open_private_sqlite(self.path, isolation_level=None, check_same_thread=False)
        prepare(self._db, self.path)
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    def give_back(self) -> int:
        """Return the pages a drained backlog left free to the file system; the bytes given back."""
        return give_back(self._db)

    def append(self, items: Sequence[Pending], now: float | None = None) -> list[int]:
        t = time.time() if now is None else now
        seqs = []
        db = self._db
        db.execute("BEGIN")
        try:
            for it in items:
                cur = db.execute(
                    "INSERT INTO messages (endpoint, priority, enqueued_at, expires_at, properties,"
                    " system_properties, body) VALUES (?,?,?,?,?,?,?)",
                    (it.endpoint, it.priority, t, t + it.ttl_secs, json.dumps(dict(it.properties)),
                     json.dumps(dict(it.system_properties)), bytes(it.body)),
                )
                seqs.append(int(cur.lastrowid or 0))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seqs

    def peek(
        self, endpoint: str, limit: int, now: float | None = None, exclude: Collection[int] = ()
    ) -> list[QueuedMessage]:
        t = time.time() if now is None else now
        self._expire(endpoint, t)
        skip = list(exclude)
        marks = ",".join("?" * len(skip))
        rows = self._db.execute(
            "SELECT seq, priority, enqueued_at, expires_at, properties, system_properties, body FROM messages"
            f" WHERE endpoint = ? AND seq NOT IN ({marks}) ORDER BY priority, seq LIMIT ?",
            (endpoint, *skip, limit),
        ).fetchall()
        return [
            QueuedMessage(seq, endpoint, json.loads(p), json.loads(s), bytes(b), prio, enq, exp)
            for seq, prio, enq, exp, p, s, b in rows
        ]

    def _expire(self, endpoint: str, t: float) -> None:
        db = self._db
        n = db.execute("SELECT COUNT(*) FROM messages WHERE endpoint = ? AND expires_at <= ?", (endpoint, t))
        count = int(n.fetchone()[0])
        if not count:
            return
        db.execute("BEGIN")
        db.execute("DELETE FROM messages WHERE endpoint = ? AND expires_at <= ?", (endpoint, t))
        self._bump(endpoint, expired=count)
        db.execute("COMMIT")

    def _bump(self, endpoint: str, delivered: int = 0, expired: int = 0) -> None:
        self._db.execute(
            "INSERT INTO counters (endpoint, delivered, expired) VALUES (?,?,?) ON CONFLICT(endpoint) DO UPDATE"
            " SET delivered = delivered + excluded.delivered, expired = expired + excluded.expired",
            (endpoint, delivered, expired),
        )

    def remove(self, endpoint: str, seqs: Iterable[int]) -> None:
        ids = list(seqs)
        if not ids:
            return
        db = self._db
        db.execute("BEGIN")
        removed = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            cur = db.execute(f"DELETE FROM messages WHERE endpoint = ? AND seq IN ({marks})", (endpoint, *chunk))
            removed += cur.rowcount
        self._bump(endpoint, delivered=removed)
        db.execute("COMMIT")

    def stats(self) -> dict[str, EndpointStats]:
        out: dict[str, EndpointStats] = {}
        for ep, delivered, expired in self._db.execute("SELECT endpoint, delivered, expired FROM counters"):
            out[ep] = EndpointStats(0, int(delivered), int(expired))
        for ep, n in self._db.execute("SELECT endpoint, COUNT(*) FROM messages GROUP BY endpoint"):
            out.setdefault(ep, EndpointStats()).pending = int(n)
        return out

    def close(self) -> None:
        self._db.close()


@dataclass(order=True)
class _Entry:
    priority: int
    seq: int
    msg: QueuedMessage = field(compare=False)


class MemoryStore:
    """The same queues in memory (tests, benchmarks, a device run with ``--no-persist``)."""

    def __init__(self) -> None:
        self._queues: dict[str, list[_Entry]] = {}
        self._stats: dict[str, EndpointStats] = {}
        self._seq = 0

    def append(self, items: Sequence[Pending], now: float | None = None) -> list[int]:
        t = time.time() if now is None else now
        seqs = []
        for it in items:
            self._seq += 1
            msg = QueuedMessage(self._seq, it.endpoint, dict(it.properties), dict(it.system_properties),
                                bytes(it.body), it.priority, t, t + it.ttl_secs)
            heapq.heappush(self._queues.setdefault(it.endpoint, []), _Entry(it.priority, self._seq, msg))
            self._stats.setdefault(it.endpoint, EndpointStats())
            seqs.append(self._seq)
        return seqs

    def peek(
        self, endpoint: str, limit: int, now: float | None = None, exclude: Collection[int] = ()
    ) -> list[QueuedMessage]:
        t = time.time() if now is None else now
        q = self._queues.get(endpoint, [])
        live = [e for e in q if e.msg.expires_at > t]
        if len(live) != len(q):
            self._stats.setdefault(endpoint, EndpointStats()).expired += len(q) - len(live)
            heapq.heapify(live)
            self._queues[endpoint] = q = live
        skip = set(exclude)
        return [e.msg for e in heapq.nsmallest(limit, (e for e in q if e.seq not in skip))]

    def remove(self, endpoint: str, seqs: Iterable[int]) -> None:
        gone = set(seqs)
        q = self._queues.get(endpoint, [])
        kept = [e for e in q if e.seq not in gone]
        heapq.heapify(kept)
        self._queues[endpoint] = kept
        self._stats.setdefault(endpoint, EndpointStats()).delivered += len(q) - len(kept)

    def stats(self) -> dict[str, EndpointStats]:
        out = {ep: EndpointStats(len(self._queues.get(ep, [])), s.delivered, s.expired)
               for ep, s in self._stats.items()}
        return out

    def close(self) -> None:
        self._queues.clear()
