"""Disk space of the SQLite files stores keep: bounded WAL, free pages given back, sizes for status output.

A store opened with ``prepare`` (before its tables are created) uses ``auto_vacuum=INCREMENTAL``: rows deleted
(retention, a drained backlog) leave free pages that ``give_back`` returns to the file system a slice at a time,
so the file shrinks without a blocking ``VACUUM``. A file made before that is converted once, with one
``VACUUM``, when opened. The WAL is truncated to ``WAL_LIMIT`` after each checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

__all__ = ["WAL_LIMIT", "file_size", "give_back", "prepare", "prune_log"]

log = logging.getLogger(__name__)

WAL_LIMIT = 4 * 1024 * 1024
_INCREMENTAL = 2


def prepare(db: sqlite3.Connection, path: Path | str) -> None:
    """WAL mode, normal sync, a bounded WAL and incremental vacuum (converting an older file once)."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:  # before WAL: a new file takes it so
        db.execute(f"PRAGMA auto_vacuum={_INCREMENTAL}")
        has_tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if has_tables:
            log.info("%s: converting to incremental vacuum (once)", path)
            if db.in_transaction:
                db.commit()
            db.execute("VACUUM")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")


def give_back(db: sqlite3.Connection, keep_pages: int = 256, max_pages: int = 16384) -> int:
    """Return free pages beyond ``keep_pages`` to the file system (at most ``max_pages`` per call, so a call stays
    short); then checkpoint so the WAL shrinks too. Returns the bytes given back."""
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    if free <= keep_pages:
        return 0
    pages = min(free - keep_pages, max_pages)
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    if db.in_transaction:
        db.commit()
    db.executescript(f"PRAGMA incremental_vacuum({pages})")  # execute() would free one page: it steps once
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return pages * page_size


def file_size(path: Path | str) -> int:
    """Bytes on disk of a SQLite database with its ``-wal`` and ``-shm`` files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += Path(f"{path}{suffix}").stat().st_size
    return total


def prune_log(db: sqlite3.Connection, table: str, size: str, time_column: str, cutoff: float, stored_bytes: int,
              max_bytes: int, batch: int = 500) -> tuple[int, int]:
    """In a message log ``table`` (rows numbered ``seq``, ``size`` the SQL of a row's bytes): delete the rows whose
    ``time_column`` is before ``cutoff``, then the oldest until the rest fits ``max_bytes``. The caller holds the
    transaction. Returns (rows removed, bytes left) from ``stored_bytes``, the bytes held before."""
    removed = 0
    row = db.execute(f"SELECT COUNT(*), COALESCE(SUM({size}), 0) FROM {table} WHERE {time_column} < ?",
                     (cutoff,)).fetchone()
    if row[0]:
        db.execute(f"DELETE FROM {table} WHERE {time_column} < ?", (cutoff,))
        removed += int(row[0])
        stored_bytes -= int(row[1])
    while stored_bytes > max_bytes:
        rows = db.execute(f"SELECT seq, {size} FROM {table} ORDER BY seq LIMIT ?", (batch,)).fetchall()
        if not rows:
            return removed, 0
        cut, freed = rows[-1][0], 0
        for seq, n in rows:
            freed += n
            if stored_bytes - freed <= max_bytes:
                cut = seq
                break
        removed += db.execute(f"DELETE FROM {table} WHERE seq <= ?", (cut,)).rowcount
        stored_bytes -= freed
    return removed, stored_bytes
