"""Where persistent sessions live: subscriptions and undelivered QoS 1 messages per client id.

``SessionStore`` is a small Protocol; ``MemorySessionStore`` keeps state for the life of the process,
``SqliteSessionStore`` across restarts. Message writes are grouped: the gateway calls ``flush()`` every
``flush_interval`` (20 ms) while messages come and go, and on stop.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edgegen.common.private import open_private_sqlite
from edgegen.common.sqlitespace import give_back, prepare

__all__ = ["MemorySessionStore", "SessionStore", "SqliteSessionStore", "StoredMessage", "StoredSession"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StoredMessage:
    seq: int
    topic: bytes  # UTF-8 topic name, as sent on the wire
    payload: bytes
    qos: int
    attempts: int = 0  # sends so far in this process (not stored); > 1 means a redelivery (DUP)
    tag: str | None = None  # a transient delivery the handler tracks (never stored; dropped with the connection)


@dataclass(slots=True)
class StoredSession:
    client_id: str
    subscriptions: dict[str, int] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)  # ordered by seq


_Batch = tuple[list[tuple[str, int, bytes, bytes, int]], list[tuple[str, int]]]


class SessionStore(Protocol):
    def load(self, client_id: str) -> StoredSession | None: ...
    def save_subscriptions(self, client_id: str, subscriptions: dict[str, int]) -> None: ...
    def add_message(self, client_id: str, message: StoredMessage) -> None: ...
    def remove_message(self, client_id: str, seq: int) -> None: ...
    def delete(self, client_id: str) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class MemorySessionStore:
    """Sessions survive reconnects (and a gateway restarted with the same store object), not the process."""

    def __init__(self) -> None:
        self._subs: dict[str, dict[str, int]] = {}
        self._messages: dict[str, dict[int, StoredMessage]] = {}

    def load(self, client_id: str) -> StoredSession | None:
        if client_id not in self._subs and client_id not in self._messages:
            return None
        messages = sorted(self._messages.get(client_id, {}).values(), key=lambda m: m.seq)
        return StoredSession(client_id, dict(self._subs.get(client_id, {})), messages)

    def save_subscriptions(self, client_id: str, subscriptions: dict[str, int]) -> None:
        self._subs[client_id] = dict(subscriptions)

    def add_message(self, client_id: str, message: StoredMessage) -> None:
        self._messages.setdefault(client_id, {})[message.seq] = message
        self._subs.setdefault(client_id, {})

    def remove_message(self, client_id: str, seq: int) -> None:
        msgs = self._messages.get(client_id)
        if msgs is not None:
            msgs.pop(seq, None)

    def delete(self, client_id: str) -> None:
        self._subs.pop(client_id, None)
        self._messages.pop(client_id, None)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class SqliteSessionStore:
    """One SQLite file (WAL); survives a restart of the gateway or the process.

    Subscriptions are written at once. Message writes wait in memory until ``flush()``, which hands the batch to
    a writer thread (one ``executemany`` and one commit per batch), so the event loop never waits for the disk;
    a message acknowledged before its batch is flushed never touches the file. Reads and ``close()`` wait for
    the writer first.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_private_sqlite(self.path, check_same_thread=False)
        prepare(self._db, self.path)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sessions (client_id TEXT PRIMARY KEY, subscriptions TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS messages (
                client_id TEXT NOT NULL, seq INTEGER NOT NULL, topic BLOB NOT NULL, payload BLOB NOT NULL,
                qos INTEGER NOT NULL, PRIMARY KEY (client_id, seq)
            ) WITHOUT ROWID;
            """
        )
        self._db.commit()
        self._adds: dict[tuple[str, int], tuple[str, int, bytes, bytes, int]] = {}
        self._removes: list[tuple[str, int]] = []
        self._closed = False
        self._jobs: queue.Queue[_Batch | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name=f"session-store:{self.path.name}", daemon=True)
        self._writer.start()

    def load(self, client_id: str) -> StoredSession | None:
        self._sync()
        with self._lock:
            row = self._db.execute("SELECT subscriptions FROM sessions WHERE client_id=?", (client_id,)).fetchone()
            rows = self._db.execute(
                "SELECT seq, topic, payload, qos FROM messages WHERE client_id=? ORDER BY seq", (client_id,)
            ).fetchall()
        if row is None and not rows:
            return None
        subs = json.loads(row[0]) if row else {}
        return StoredSession(client_id, subs, [StoredMessage(s, bytes(t), bytes(p), q) for s, t, p, q in rows])

    def save_subscriptions(self, client_id: str, subscriptions: dict[str, int]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions(client_id, subscriptions) VALUES(?, ?) "
                "ON CONFLICT(client_id) DO UPDATE SET subscriptions=excluded.subscriptions",
                (client_id, json.dumps(subscriptions)),
            )
            self._db.commit()

    def add_message(self, client_id: str, message: StoredMessage) -> None:
        self._adds[(client_id, message.seq)] = (client_id, message.seq, message.topic, message.payload, message.qos)

    def remove_message(self, client_id: str, seq: int) -> None:
        if self._adds.pop((client_id, seq), None) is None:
            self._removes.append((client_id, seq))

    def delete(self, client_id: str) -> None:
        self._sync()
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE client_id=?", (client_id,))
            self._db.execute("DELETE FROM sessions WHERE client_id=?", (client_id,))
            self._db.commit()

    def flush(self) -> None:
        """Hand the pending message writes to the writer thread (returns at once)."""
        if (self._adds or self._removes) and not self._closed:
            self._jobs.put((list(self._adds.values()), self._removes))
            self._adds = {}
            self._removes = []

    def give_back(self) -> int:
        """Return the pages delivered messages left free to the file system; the bytes given back."""
        if self._closed:
            return 0
        self._sync()
        with self._lock:
            return give_back(self._db)

    def close(self) -> None:
        """Write everything pending, stop the writer and close; closing twice is harmless."""
        if self._closed:
            return
        self._sync()
        self._closed = True
        self._jobs.put(None)
        self._writer.join(10)
        with self._lock:
            self._db.commit()
            self._db.close()

    def _sync(self) -> None:
        self.flush()
        self._jobs.join()

    def _write_loop(self) -> None:
        while True:
            batch = self._jobs.get()
            try:
                if batch is None:
                    return
                adds, removes = batch
                with self._lock:
                    if adds:
                        self._db.executemany("INSERT OR REPLACE INTO messages VALUES(?, ?, ?, ?, ?)", adds)
                    if removes:
                        self._db.executemany("DELETE FROM messages WHERE client_id=? AND seq=?", removes)
                    self._db.commit()
            except Exception:
                log.exception("writing MQTT sessions to %s failed", self.path)
            finally:
                self._jobs.task_done()
