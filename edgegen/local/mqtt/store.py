"""Where persistent sessions live: subscriptions and undelivered QoS 1 messages per client id.

``SessionStore`` is a small Protocol; ``MemorySessionStore`` keeps state for the life of the process,
``SqliteSessionStore`` across restarts. Writes are grouped: the gateway calls ``flush()`` once per event-loop
turn (and on stop), so a burst of messages costs one commit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["MemorySessionStore", "SessionStore", "SqliteSessionStore", "StoredMessage", "StoredSession"]


@dataclass(slots=True)
class StoredMessage:
    seq: int
    topic: bytes  # UTF-8 topic name, as sent on the wire
    payload: bytes
    qos: int
    attempts: int = 0  # sends so far in this process (not stored); > 1 means a redelivery (DUP)


@dataclass(slots=True)
class StoredSession:
    client_id: str
    subscriptions: dict[str, int] = field(default_factory=dict)
    messages: list[StoredMessage] = field(default_factory=list)  # ordered by seq


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
    """One SQLite file (WAL); survives a restart of the gateway or the process."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
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
        self._dirty = False
        self._closed = False

    def load(self, client_id: str) -> StoredSession | None:
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
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO messages VALUES(?, ?, ?, ?, ?)",
                (client_id, message.seq, message.topic, message.payload, message.qos),
            )
            self._dirty = True

    def remove_message(self, client_id: str, seq: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE client_id=? AND seq=?", (client_id, seq))
            self._dirty = True

    def delete(self, client_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM messages WHERE client_id=?", (client_id,))
            self._db.execute("DELETE FROM sessions WHERE client_id=?", (client_id,))
            self._db.commit()
            self._dirty = False

    def flush(self) -> None:
        if self._dirty:
            with self._lock:
                self._db.commit()
                self._dirty = False

    def close(self) -> None:
        """Commit and close; closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._db.commit()
            self._db.close()
