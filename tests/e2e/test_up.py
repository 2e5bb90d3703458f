"""`edgegen up` as the README tells a first-time user to run it: results stream in, every child stops."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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


def test_up_streams_results_and_stops_after_duration(tmp_path: Path) -> None:
    sol = solution_copy(tmp_path)
    # 25 s: on a loaded 2-core machine the three modules' first results took 11 s of a 12 s run (CI saw 1 result)
    proc = start_up(sol, "--duration", "25")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    results = [line for line in out.splitlines() if "edgegen-demo/monitor:" in line]
    assert len(results) >= 3, out
    assert '"score"' in results[0] and '"anomaly"' in results[0]
    assert "[summary]" in out and "[done]" in out and "modules: inference=running" in out
    assert (sol / "manifests" / "deployment.amd64.json").is_file()
    time.sleep(1)
    assert leftovers(str(sol)) == []


def test_up_stops_every_child_on_ctrl_c(tmp_path: Path) -> None:
    sol = solution_copy(tmp_path)
    proc = start_up(sol)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        lines.append(line)
        if "edgegen-demo/monitor:" in line or time.monotonic() > deadline:
            break
    assert any("edgegen-demo/monitor:" in line for line in lines), "".join(lines)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "[done]" in rest
    time.sleep(1)
    assert leftovers(str(sol)) == []
