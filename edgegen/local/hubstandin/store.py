"""Where the stand-in keeps its state: JSON documents by kind and key, and the device-to-cloud message log.

``SqliteHubStore`` (WAL, one file) survives restarts; ``MemoryHubStore`` is for unit tests. Both satisfy
``HubStore``; the backend only talks to that Protocol.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["HubStore", "MemoryHubStore", "SqliteHubStore", "StoredMessage"]


@dataclass(frozen=True)
class StoredMessage:
    """One device-to-cloud message as the hub stored it."""

    seq: int
    device_id: str
    module_id: str | None
    enqueued_time: str  # ISO 8601 UTC
    system_properties: dict[str, Any]
    properties: dict[str, str]  # application properties
    body: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "deviceId": self.device_id, "moduleId": self.module_id,
            "enqueuedTime": self.enqueued_time, "systemProperties": self.system_properties,
            "properties": self.properties, "body": self.body.decode("utf-8", "replace"),
        }


class HubStore(Protocol):
    def load(self, kind: str) -> dict[str, Any]: ...
    def put(self, kind: str, key: str, value: Any) -> None: ...
    def delete(self, kind: str, key: str) -> None: ...
    def batch(self) -> Any: ...  # context manager: writes inside commit together
    def append_message(self, message: StoredMessage) -> StoredMessage: ...
    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]: ...
    def close(self) -> None: ...


class MemoryHubStore:
    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], str] = {}
        self._messages: list[StoredMessage] = []

    def load(self, kind: str) -> dict[str, Any]:
        return {k: json.loads(v) for (kd, k), v in self._docs.items() if kd == kind}

    def put(self, kind: str, key: str, value: Any) -> None:
        self._docs[(kind, key)] = json.dumps(value)

    def delete(self, kind: str, key: str) -> None:
        self._docs.pop((kind, key), None)

    @contextmanager
    def batch(self) -> Iterator[None]:
        yield

    def append_message(self, message: StoredMessage) -> StoredMessage:
        stored = StoredMessage(len(self._messages) + 1, *_fields(message)[1:])
        self._messages.append(stored)
        return stored

    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]:
        return [m for m in self._messages if m.seq > after_seq][:limit]

    def close(self) -> None:
        pass


def _fields(m: StoredMessage) -> tuple[Any, ...]:
    return (m.seq, m.device_id, m.module_id, m.enqueued_time, m.system_properties, m.properties, m.body)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, module_id TEXT, enqueued_time TEXT NOT NULL,
  system_properties TEXT NOT NULL, properties TEXT NOT NULL, body BLOB NOT NULL);
"""


class SqliteHubStore:
    """SQLite in WAL mode; safe to share between the HTTP and MQTT sides of one process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._db.execute("COMMIT")

    def load(self, kind: str) -> dict[str, Any]:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM docs WHERE kind = ?", (kind,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def put(self, kind: str, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO docs (kind, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
                (kind, key, json.dumps(value)),
            )

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))

    def append_message(self, message: StoredMessage) -> StoredMessage:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO messages (device_id, module_id, enqueued_time, system_properties, properties, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (message.device_id, message.module_id, message.enqueued_time,
                 json.dumps(message.system_properties), json.dumps(message.properties), message.body),
            )
            seq = int(cur.lastrowid or 0)
        return StoredMessage(seq, *_fields(message)[1:])

    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, device_id, module_id, enqueued_time, system_properties, properties, body "
                "FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit),
            ).fetchall()
        return [StoredMessage(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), bytes(r[6])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
