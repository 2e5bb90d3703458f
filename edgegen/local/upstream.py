"""``$upstream``: where the edge hub sends messages bound for IoT Hub.

``UpstreamSink`` is the small Protocol the router talks to. ``LocalUpstream`` is the sink used until a hub is
attached: it appends every message to a SQLite file (``<state>/upstream.sqlite``) that ``edgegen device messages``
reads, so device-to-cloud output is durable and inspectable without Azure. The IoT Hub stand-in provides another
sink with the same two methods.

The log is bounded like the hub's message store (``edgegen.common.retention``: by age and size, ``prune``), and
the space retention frees is given back (``give_back``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edgegen.common.private import open_private_sqlite
from edgegen.common.sqlitespace import file_size, give_back, prepare, prune_log

__all__ = ["LocalUpstream", "UpstreamMessage", "UpstreamSink", "upstream_event"]


@dataclass(frozen=True)
class UpstreamMessage:
    device_id: str
    module_id: str | None
    properties: Mapping[str, str]  # application properties
    system_properties: Mapping[str, str]  # routing names: messageId, contentType, connectionModuleId, …
    body: bytes
    enqueued_time: float


class UpstreamSink(Protocol):
    def available(self) -> bool:
        """False while the hub is unreachable; the router then keeps messages in its store."""
        ...

    async def send(self, messages: Sequence[UpstreamMessage]) -> None:
        """Deliver all of ``messages`` in order, or raise (they stay queued and are retried)."""
        ...


def upstream_event(seq: int, msg: UpstreamMessage) -> dict[str, Any]:
    """A stored message in the shape ``az iot hub monitor-events`` prints (plus ``seq`` and ``enqueuedTime``)."""
    ct = msg.system_properties.get("contentType", "")
    payload: Any
    try:
        text = msg.body.decode("utf-8")
        payload = json.loads(text) if ct == "application/json" or text[:1] in "{[" else text
    except (UnicodeDecodeError, ValueError):
        payload = msg.body.decode("utf-8", "replace") if _is_text(msg.body) else base64.b64encode(msg.body).decode()
    return {
        "seq": seq,
        "event": {
            "origin": msg.device_id,
            "module": msg.module_id or "",
            "interface": "",
            "component": "",
            "properties": {"application": dict(msg.properties), "system": dict(msg.system_properties)},
            "annotations": {"iothub-enqueuedtime": msg.enqueued_time},
            "payload": payload,
        },
    }


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_SIZE = "LENGTH(body) + LENGTH(properties) + LENGTH(system_properties)"


class LocalUpstream:
    """A durable local ``$upstream``: every message appended to one SQLite file, in arrival order."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = open_private_sqlite(self.path, isolation_level=None, check_same_thread=False)
        prepare(self._db, self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS upstream (seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL,"
            " module_id TEXT, properties TEXT NOT NULL, system_properties TEXT NOT NULL, body BLOB NOT NULL,"
            " enqueued_time REAL NOT NULL)"
        )
        self._bytes = int(self._db.execute(f"SELECT COALESCE(SUM({_SIZE}), 0) FROM upstream").fetchone()[0])

    def available(self) -> bool:
        return True

    async def send(self, messages: Sequence[UpstreamMessage]) -> None:
        self.append(messages)

    def append(self, messages: Sequence[UpstreamMessage]) -> None:
        db = self._db
        rows = [(m.device_id, m.module_id, json.dumps(dict(m.properties)), json.dumps(dict(m.system_properties)),
                 bytes(m.body), m.enqueued_time or time.time()) for m in messages]
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO upstream (device_id, module_id, properties, system_properties, body, enqueued_time)"
                " VALUES (?,?,?,?,?,?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._bytes += sum(len(r[2]) + len(r[3]) + len(r[4]) for r in rows)

    def prune(self, older_than_ms: int, max_bytes: int) -> int:
        """Drop messages enqueued before ``older_than_ms``, then the oldest until the log fits ``max_bytes``."""
        db = self._db
        db.execute("BEGIN")
        try:
            removed, self._bytes = prune_log(db, "upstream", _SIZE, "enqueued_time", older_than_ms / 1000,
                                             self._bytes, max_bytes, batch=1000)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return removed

    def give_back(self) -> int:
        return give_back(self._db)

    def sizes(self) -> dict[str, int]:
        return {"messages": self.count(), "messageBytes": self._bytes, "fileBytes": file_size(self.path)}

    def read(self, after: int = 0, limit: int = 1000) -> list[tuple[int, UpstreamMessage]]:
        rows = self._db.execute(
            "SELECT seq, device_id, module_id, properties, system_properties, body, enqueued_time FROM upstream"
            " WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit),
        ).fetchall()
        return [(seq, UpstreamMessage(d, m, json.loads(p), json.loads(s), bytes(b), t))
                for seq, d, m, p, s, b, t in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM upstream").fetchone()[0])

    def close(self) -> None:
        self._db.close()
