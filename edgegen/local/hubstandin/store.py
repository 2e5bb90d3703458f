"""Where the stand-in keeps its state: JSON documents by kind and key, and the device-to-cloud message log.

``SqliteHubStore`` (WAL, one file) survives restarts; ``MemoryHubStore`` is for unit tests. Both satisfy
``HubStore``; the backend only talks to that Protocol.

The message log is also the Event Hub-compatible stream: each message has a global ``seq`` (the live feed's
cursor and the Event Hub offset), a ``partition`` and a per-partition sequence number ``pseq`` that counts on
from 0 for the life of the hub (counters in ``partitions``, so retention never reuses a number), and its
enqueued time in milliseconds. Messages are written a batch at a time (``append_messages``: one transaction for
all the messages of an event-loop turn). ``prune`` applies retention (``edgegen.common.retention``): older than a
cut-off, then the oldest until the log fits a byte budget (body plus properties); ``give_back`` returns the freed
pages to the file system.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgegen.common.private import open_private_sqlite
from edgegen.common.sqlitespace import file_size, give_back, prepare, prune_log

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
    partition: int = 0
    pseq: int = 0  # sequence number within the partition
    enqueued_ms: int = 0

    @property
    def size(self) -> int:
        return len(self.body) + len(json.dumps(self.properties)) + len(json.dumps(self.system_properties))

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
    def append_messages(self, messages: Sequence[StoredMessage]) -> list[StoredMessage]: ...
    def last_seq(self) -> int: ...
    def first_seq_since(self, enqueued_ms: int) -> int: ...
    def give_back(self) -> int: ...
    def sizes(self) -> dict[str, int]: ...
    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]: ...
    def partition_messages(self, partition: int, from_pseq: int, limit: int) -> list[StoredMessage]: ...
    def partition_info(self, partition: int) -> tuple[int, StoredMessage | None]: ...
    def first_pseq(self, partition: int, *, after_seq: int | None = None, after_ms: int | None = None) -> int: ...
    def prune(self, older_than_ms: int, max_bytes: int) -> int: ...
    def close(self) -> None: ...


class MemoryHubStore:
    def __init__(self) -> None:
        self._docs: dict[tuple[str, str], str] = {}
        self._messages: list[StoredMessage] = []
        self._seq = 0
        self._next_pseq: dict[int, int] = {}

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
        return self.append_messages([message])[0]

    def append_messages(self, messages: Sequence[StoredMessage]) -> list[StoredMessage]:
        out = []
        for message in messages:
            self._seq += 1
            pseq = self._next_pseq.get(message.partition, 0)
            self._next_pseq[message.partition] = pseq + 1
            out.append(StoredMessage(self._seq, *_fields(message)[1:], partition=message.partition, pseq=pseq,
                                     enqueued_ms=message.enqueued_ms))
        self._messages.extend(out)
        return out

    def last_seq(self) -> int:
        return self._seq

    def first_seq_since(self, enqueued_ms: int) -> int:
        return next((m.seq for m in self._messages if m.enqueued_ms >= enqueued_ms), self._seq + 1)

    def give_back(self) -> int:
        return 0

    def sizes(self) -> dict[str, int]:
        return {"messages": len(self._messages), "messageBytes": sum(m.size for m in self._messages), "fileBytes": 0}

    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]:
        return [m for m in self._messages if m.seq > after_seq][:limit]

    def partition_messages(self, partition: int, from_pseq: int, limit: int) -> list[StoredMessage]:
        return [m for m in self._messages if m.partition == partition and m.pseq >= from_pseq][:limit]

    def partition_info(self, partition: int) -> tuple[int, StoredMessage | None]:
        mine = [m for m in self._messages if m.partition == partition]
        return (mine[0].pseq if mine else self._next_pseq.get(partition, 0)), (mine[-1] if mine else None)

    def first_pseq(self, partition: int, *, after_seq: int | None = None, after_ms: int | None = None) -> int:
        for m in self._messages:
            if m.partition == partition and (after_seq is None or m.seq > after_seq) and (
                    after_ms is None or m.enqueued_ms > after_ms):
                return m.pseq
        return self._next_pseq.get(partition, 0)

    def prune(self, older_than_ms: int, max_bytes: int) -> int:
        before = len(self._messages)
        kept = [m for m in self._messages if m.enqueued_ms >= older_than_ms]
        total = sum(m.size for m in kept)
        while kept and total > max_bytes:
            total -= kept.pop(0).size
        self._messages = kept
        return before - len(kept)

    def close(self) -> None:
        pass


def _fields(m: StoredMessage) -> tuple[Any, ...]:
    return (m.seq, m.device_id, m.module_id, m.enqueued_time, m.system_properties, m.properties, m.body)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, module_id TEXT, enqueued_time TEXT NOT NULL,
  system_properties TEXT NOT NULL, properties TEXT NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS partitions (partition INTEGER PRIMARY KEY, next_pseq INTEGER NOT NULL);
"""
_COLUMNS = "seq, device_id, module_id, enqueued_time, system_properties, properties, body, partition, pseq, enqueued_ms"
_SIZE = "LENGTH(body) + LENGTH(properties) + LENGTH(system_properties)"


def _row(r: Any) -> StoredMessage:
    return StoredMessage(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), bytes(r[6]), int(r[7]),
                         int(r[8]), int(r[9]))


def _iso_ms(text: str) -> int:
    import datetime as dt

    try:
        return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


class SqliteHubStore:
    """SQLite in WAL mode; safe to share between the HTTP and MQTT sides of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_private_sqlite(path, check_same_thread=False, isolation_level=None)
        prepare(self._db, path)
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_enqueued ON messages (enqueued_ms)")
        self._next_pseq: dict[int, int] = dict(self._db.execute("SELECT partition, next_pseq FROM partitions"))
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
        self._seq = int(row[0]) if row else 0
        self._bytes = int(self._db.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM messages").fetchone()[0])

    def _migrate(self) -> None:
        """Stores written before the stream had partitions: everything so far is partition 0, in order."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(messages)")}
        if "partition" in columns:
            return
        with self.batch():
            self._db.execute("ALTER TABLE messages ADD COLUMN partition INTEGER NOT NULL DEFAULT 0")
            self._db.execute("ALTER TABLE messages ADD COLUMN pseq INTEGER NOT NULL DEFAULT 0")
            self._db.execute("ALTER TABLE messages ADD COLUMN enqueued_ms INTEGER NOT NULL DEFAULT 0")
            rows = self._db.execute("SELECT seq, enqueued_time FROM messages ORDER BY seq").fetchall()
            self._db.executemany("UPDATE messages SET pseq = ?, enqueued_ms = ? WHERE seq = ?",
                                 [(i, _iso_ms(t), seq) for i, (seq, t) in enumerate(rows)])
            if rows:
                self._db.execute("INSERT OR REPLACE INTO partitions VALUES (0, ?)", (len(rows),))
        self._db.execute("CREATE INDEX IF NOT EXISTS messages_partition ON messages (partition, pseq)")

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
        return self.append_messages([message])[0]

    def append_messages(self, messages: Sequence[StoredMessage]) -> list[StoredMessage]:
        """Store ``messages`` in one transaction, numbered on from the last ``seq`` and their partition's ``pseq``."""
        out: list[StoredMessage] = []
        rows = []
        added = 0
        dumps = json.dumps
        with self._lock:
            seq = self._seq
            next_pseq = dict(self._next_pseq)
            for m in messages:
                seq += 1
                pseq = next_pseq.get(m.partition, 0)
                next_pseq[m.partition] = pseq + 1
                sysprops = dumps(m.system_properties)
                props = dumps(m.properties) if m.properties else "{}"
                rows.append((seq, m.device_id, m.module_id, m.enqueued_time, sysprops, props, m.body, m.partition,
                             pseq, m.enqueued_ms))
                added += len(m.body) + len(sysprops) + len(props)
                out.append(StoredMessage(seq, m.device_id, m.module_id, m.enqueued_time, m.system_properties,
                                         m.properties, m.body, m.partition, pseq, m.enqueued_ms))
            changed = [(p, n) for p, n in next_pseq.items() if self._next_pseq.get(p) != n]
            with self.batch():
                self._db.executemany(f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("INSERT OR REPLACE INTO partitions VALUES (?, ?)", changed)
            self._seq = seq
            self._next_pseq = next_pseq
            self._bytes += added
        return out

    def last_seq(self) -> int:
        return self._seq

    def first_seq_since(self, enqueued_ms: int) -> int:
        """The first stored message enqueued at or after ``enqueued_ms`` (the next one to come when none is)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(seq) FROM messages WHERE enqueued_ms >= ?", (enqueued_ms,)).fetchone()
        return int(row[0]) if row and row[0] is not None else self._seq + 1

    def give_back(self) -> int:
        """Return free pages to the file system (after ``prune``); the bytes given back."""
        with self._lock:
            return give_back(self._db)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            count = int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        return {"messages": count, "messageBytes": self._bytes, "fileBytes": file_size(self.path)}

    def messages(self, after_seq: int = 0, limit: int = 1000) -> list[StoredMessage]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def partition_messages(self, partition: int, from_pseq: int, limit: int) -> list[StoredMessage]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE partition = ? AND pseq >= ? ORDER BY pseq LIMIT ?",
                (partition, from_pseq, limit)).fetchall()
        return [_row(r) for r in rows]

    def partition_info(self, partition: int) -> tuple[int, StoredMessage | None]:
        """(first retained sequence number, last message) of a partition."""
        with self._lock:
            first = self._db.execute("SELECT MIN(pseq) FROM messages WHERE partition = ?", (partition,)).fetchone()
            last = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE partition = ? ORDER BY pseq DESC "
                                    "LIMIT 1", (partition,)).fetchone()
        begin = first[0] if first and first[0] is not None else self._next_pseq.get(partition, 0)
        return int(begin), (_row(last) if last else None)

    def first_pseq(self, partition: int, *, after_seq: int | None = None, after_ms: int | None = None) -> int:
        """The first sequence number of ``partition`` past an offset (global seq) or an enqueued time."""
        where, args = ["partition = ?"], [partition]
        if after_seq is not None:
            where.append("seq > ?")
            args.append(after_seq)
        if after_ms is not None:
            where.append("enqueued_ms > ?")
            args.append(after_ms)
        with self._lock:
            row = self._db.execute(f"SELECT MIN(pseq) FROM messages WHERE {' AND '.join(where)}", args).fetchone()
        return int(row[0]) if row and row[0] is not None else self._next_pseq.get(partition, 0)

    def prune(self, older_than_ms: int, max_bytes: int) -> int:
        """Drop messages enqueued before ``older_than_ms``, then the oldest until the log fits ``max_bytes``."""
        with self._lock, self.batch():
            removed, self._bytes = prune_log(self._db, "messages", _SIZE, "enqueued_ms", older_than_ms, self._bytes,
                                             max_bytes)
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.close()
