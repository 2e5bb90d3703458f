"""Run records of module processes: what lets a restarted device find the modules an earlier run left running.

Modules run in their own session and outlive the device process, as IoT Edge's modules outlive edgeAgent and
edgeHub (the container engine keeps them, not the runtime): a crash of the device process must not take the
messages a module had already taken with it. ``<state>/run/<module>.json`` (0600 in a 0700 folder) holds::

    {"pid": 1234, "start": <the process's start time in clock ticks since boot, /proc/<pid>/stat field 22>,
     "fingerprint": <hash of the command, folder and environment it was started with>}

A record names a live process only when that pid is alive *and* started at that tick (pids are reused); the
restarted device adopts it when its fingerprint is what it would start now, and stops it otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgegen.common.private import write_private

__all__ = ["RunRecord", "fingerprint", "live_record", "process_start", "read_record", "recorded_modules",
           "remove_record", "write_record"]


@dataclass(frozen=True)
class RunRecord:
    pid: int
    start: int
    fingerprint: str


def fingerprint(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> str:
    data = json.dumps([list(argv), cwd, sorted(env.items())], separators=(",", ":"))
    return hashlib.sha256(data.encode()).hexdigest()


def process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie process; None when there is none."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of stat; the list starts at field 3 (state)


def _path(run_dir: Path, module: str) -> Path:
    return Path(run_dir) / f"{module}.json"


def write_record(run_dir: Path, module: str, record: RunRecord) -> None:
    write_private(_path(run_dir, module),
                  json.dumps({"pid": record.pid, "start": record.start, "fingerprint": record.fingerprint}))


def read_record(run_dir: Path, module: str) -> RunRecord | None:
    try:
        data = json.loads(_path(run_dir, module).read_text())
        return RunRecord(int(data["pid"]), int(data["start"]), str(data["fingerprint"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_record(run_dir: Path, module: str) -> RunRecord | None:
    """The module's record when its process still runs (same pid, same start time)."""
    record = read_record(run_dir, module)
    if record is None or record.pid <= 1 or process_start(record.pid) != record.start:
        return None
    return record


def remove_record(run_dir: Path, module: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(run_dir, module).unlink()


def recorded_modules(run_dir: Path) -> list[str]:
    try:
        return sorted(p.stem for p in Path(run_dir).glob("*.json"))
    except OSError:
        return []
