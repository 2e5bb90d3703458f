"""Secrets in output and in a new solution: ``edgegen hub serve`` prints the connection strings with their keys
masked and names the file that holds them (0600); a log line carrying a connection string is masked by the CLI's
log filter; ``edgegen new`` writes ``.env`` 0600."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgegen.common import lograte
from edgegen.common.sas import parse_connection_string
from tests.support.net import free_loopback_address, free_port

pytestmark = [pytest.mark.integration]


def test_hub_serve_prints_no_key(tmp_path: Path) -> None:
    address = free_loopback_address(8883)
    state = tmp_path / "hub"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "edgegen", "hub", "serve", "--state-dir", str(state),
                             "--address", address, "--port", str(free_port(address)), "--no-amqp",
                             "--duration", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        deadline = time.monotonic() + 60
        while not (state / "hub.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)
        info = json.loads((state / "hub.json").read_text())
        key = parse_connection_string(info["connectionString"])["SharedAccessKey"]
        assert stat.S_IMODE((state / "hub.json").stat().st_mode) == 0o600
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "SharedAccessKey=****" in out and f"(full: {state / 'hub.json'}, 0600)" in out, out
    assert key not in out


def test_log_lines_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("edgegen.test.masking")
    handler = logging.StreamHandler(sys.stderr)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        lograte.install(logger)
        logger.warning("cannot connect with %s", "HostName=h;DeviceId=d;SharedAccessKey=c2VjcmV0LWtleQ==")
        logger.warning("token SharedAccessSignature sr=h&sig=c2lnbmF0dXJl&se=1")
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert err == ("cannot connect with HostName=h;DeviceId=d;SharedAccessKey=****\n"
                   "token SharedAccessSignature sr=h&sig=****&se=1\n")


def test_a_new_solutions_env_file_is_private_from_creation(tmp_path: Path) -> None:
    """``edgegen new``: ``.env`` is where registry passwords and connection strings go, so it starts 0600 (a file
    filled in later keeps its mode); the other files keep the umask's mode."""
    from edgegen.generator.scaffold import new_solution

    old = os.umask(0o022)
    try:
        sol = new_solution(tmp_path / "sol", module=None)
    finally:
        os.umask(old)
    assert "CONTAINER_REGISTRY_PASSWORD" in (sol / ".env").read_text()
    assert stat.S_IMODE((sol / ".env").stat().st_mode) == 0o600
    assert stat.S_IMODE((sol / "deployment.template.json").stat().st_mode) == 0o644
    assert stat.S_IMODE(sol.stat().st_mode) == 0o755  # the solution folder itself is the user's
