"""`edgegen up` as the README tells a first-time user to run it: results stream in, every child stops."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def solution_copy(tmp_path: Path) -> Path:
    sol = tmp_path / "solution"
    sol.mkdir()
    shutil.copy(REPO / "deployment.template.json", sol)
    shutil.copytree(REPO / "modules", sol / "modules", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO / ".models", sol / ".models")  # the registry holding the model the template pins
    return sol


def cmdlines() -> dict[int, str]:
    """Every process's command line (/proc/<pid>/cmdline, what any local user sees in ``ps``)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return found


_KEY = re.compile(rb"[A-Za-z0-9+/]{43}=")  # a 32-byte key in base64, as IoT Hub and edgegen make them


def stored_keys(state: Path) -> set[str]:
    """The symmetric keys in a state tree (the hub's SQLite store, the device's key caches)."""
    keys: set[str] = set()
    for path in state.rglob("*"):
        if path.is_file() and (path.suffix in (".sqlite", ".json") or path.name.endswith("-wal")):
            keys.update(m.decode() for m in _KEY.findall(path.read_bytes()))
    return keys


def leftovers(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append(f"{proc.name}: {cmd}")
    return found


def start_up(sol: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("IOTHUB_CONNECTION_STRING", None)
    return subprocess.Popen([sys.executable, "-m", "edgegen", "up", "--state-dir", str(sol / ".state"), *args],
                            cwd=sol, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def no_leftovers(marker: str, timeout: float = 30) -> None:
    """Every process of the run gone (a child that got SIGKILL can be a moment behind its parent's exit)."""
    deadline = time.monotonic() + timeout
    while (found := leftovers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert found == []


def read_until(proc: subprocess.Popen[str], done, timeout: float = 240) -> list[str]:
    """Lines of ``proc``'s output until ``done(lines)`` (or the output ends, or ``timeout`` passes)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        lines.append(line)
        if done(lines) or time.monotonic() > deadline:
            break
    return lines


def test_up_streams_results_and_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:
    """Waits for what it checks (three results, a summary with the modules running), however slow the machine."""
    sol = solution_copy(tmp_path)
    proc = start_up(sol)
    argv_seen: set[str] = set()  # every command line on the host while up runs, as `ps` shows them to anyone
    watching = threading.Event()

    def watch_argv() -> None:
        while not watching.wait(0.3):
            argv_seen.update(cmdlines().values())

    watcher = threading.Thread(target=watch_argv, daemon=True)
    watcher.start()

    def seen(lines: list[str]) -> bool:
        return sum("edgegen-demo/monitor:" in line for line in lines) >= 3 and any(
            "[summary]" in line and "inference=running" in line for line in lines)

    lines = read_until(proc, seen)
    out = "".join(lines)
    assert seen(lines), out
    results = [line for line in lines if "edgegen-demo/monitor:" in line]
    assert '"score"' in results[0] and '"anomaly"' in results[0]
    assert (sol / "manifests" / "deployment.amd64.json").is_file()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + rest
    assert "[done]" in rest
    watching.set()
    watcher.join(10)
    keys = stored_keys(sol / ".state")
    assert len(keys) >= 4, keys  # the hub's policies, the device, its modules
    leaked = [k for k in keys if k in out + rest or any(k in cmd for cmd in argv_seen)]
    assert leaked == [], "a key was printed or passed on a command line"
    no_leftovers(str(sol))


def test_up_stops_by_itself_after_duration(tmp_path: Path) -> None:
    sol = solution_copy(tmp_path)
    proc = start_up(sol, "--duration", "3")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert "stopping the edge device, its modules and the hub" in out and "[done]" in out
    no_leftovers(str(sol))
