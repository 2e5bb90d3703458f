"""Processes the fixtures and benchmarks start: stopping one politely, finding one, its CPU time (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["cpu_seconds", "pid_of", "stop_process"]


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (from /proc/<pid>/stat), 0 when ``pid`` is None."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(needle: str) -> int | None:
    """The first process whose command line contains ``needle``, or None."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def stop_process(proc: subprocess.Popen[bytes], grace: float, kill_wait: float | None = 5.0) -> None:
    """SIGTERM ``proc`` and wait ``grace`` seconds; if it is still running, SIGKILL it and wait ``kill_wait``
    seconds (None: as long as it takes)."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=kill_wait)
