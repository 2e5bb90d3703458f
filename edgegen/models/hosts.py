"""Scoring hosts the profiler drives as black boxes over HTTP (azmlinfsrv's contract: ``GET /`` → 200 when
ready, ``POST /score``).

``HostCommand`` says how to start one for an entry script and a model folder on a loopback address and port;
the profiler only starts it, waits for ``GET /``, sends requests and reads the process's CPU and memory from
``/proc``. Two commands exist:

- ``edgegen serve`` (``edgegen-serve``, the default): the scoring core the inference module runs (``amlhost``),
  so the figures are the module's own;
- ``builtin``: ``python -m edgegen.models.minihost``, a minimal one-worker aiohttp host (no Werkzeug or
  inference-schema), kept as a baseline to compare with.
Both run ``run()`` one request at a time, like the inference module with ``SCORING_THREADS=1``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from edgegen.models.errors import ModelError

__all__ = ["HostCommand", "RunningHost", "available_hosts", "host_command", "start_host"]


@dataclass(frozen=True)
class HostCommand:
    name: str
    argv_template: tuple[str, ...]  # {script} {model_dir} {address} {port} are filled in

    def argv(self, script: Path, model_dir: Path, address: str, port: int) -> list[str]:
        values = {"script": str(script), "model_dir": str(model_dir), "address": address, "port": str(port)}
        return [part.format(**values) for part in self.argv_template]


SERVE = HostCommand("edgegen-serve", (sys.executable, "-m", "edgegen", "serve", "{script}", "--model-dir",
                                      "{model_dir}", "--address", "{address}", "--port", "{port}"))
BUILTIN = HostCommand("builtin", (sys.executable, "-m", "edgegen.models.minihost", "{script}", "{model_dir}",
                                  "{address}", "{port}"))


def available_hosts() -> dict[str, HostCommand]:
    return {"edgegen-serve": SERVE, "builtin": BUILTIN}


def host_command(name: str) -> HostCommand:
    """The host called ``name`` (``auto``: ``edgegen serve``)."""
    hosts = available_hosts()
    if name == "auto":
        return SERVE
    if name not in hosts:
        raise ModelError(f"scoring host {name!r} is not available here", hint=f"choose one of auto, {', '.join(hosts)}")
    return hosts[name]


@dataclass
class RunningHost:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def start_host(command: HostCommand, script: Path, model_dir: Path, address: str, port: int, log: Path,
               env: Mapping[str, str], timeout: float = 60.0) -> Iterator[RunningHost]:
    """Start the host, wait for ``GET /`` (bounded), stop it (SIGTERM, then SIGKILL) on the way out."""
    log.parent.mkdir(parents=True, exist_ok=True)
    url = f"http://{address}:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command.argv(script, model_dir, address, port), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **env}, cwd=script.parent)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(url + "/"):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:]
                raise ModelError(f"the scoring host ({command.name}) exited with {proc.returncode} before it was "
                                 f"ready:\n{tail}", hint=f"full log: {log}")
            if time.monotonic() > deadline:
                raise ModelError(f"the scoring host ({command.name}) did not answer GET / within {timeout:g} s",
                                 hint=f"see {log}; a slow init() needs a larger --startup-timeout")
            time.sleep(0.05)
        yield RunningHost(proc, url, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
