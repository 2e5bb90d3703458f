"""Run the repo's edge modules as real processes against a real Mosquitto (TLS on 127.x:8883).

One broker per module process: a shared broker would mix twin and method traffic between modules.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.iothub_responder import IoTHubResponder, run_responder
from tests.support.mosquitto import MosquittoBroker, mosquitto_path, run_mosquitto

MODULES = Path(__file__).resolve().parents[2] / "modules"
DEVICE = "dev1"


@dataclass
class ModuleRun:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    hub: IoTHubResponder

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s; log:\n{self.log()}") from None


def module_env(broker: Any, module: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    key = base64.b64encode(os.urandom(32)).decode()
    # Only the basics from our own environment: a module must get its settings from what we pass here.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")}
    env.update({
        "EdgeHubConnectionString": f"HostName=localhost;DeviceId={DEVICE};ModuleId={module};"
                                   f"SharedAccessKey={key};GatewayHostName={broker.host}",
        "EdgeModuleCACertificateFile": str(broker.ca_file),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


@contextmanager
def run_module(module: str, tmp_path: Path, env: dict[str, str] | None = None,
               desired: dict[str, Any] | None = None, cwd: Path | None = None,
               broker: MosquittoBroker | None = None) -> Iterator[ModuleRun]:
    """A fresh broker (unless given) + responder + the module's ``main.py`` as a subprocess."""
    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with ExitStack() as stack:
        if broker is None:
            broker = stack.enter_context(run_mosquitto(tls=True))
        hub = stack.enter_context(run_responder(broker, DEVICE, module, desired))
        log_path = tmp_path / f"{module}.log"
        log = stack.enter_context(open(log_path, "wb"))
        proc = subprocess.Popen([sys.executable, str(MODULES / module / "main.py")], cwd=cwd or tmp_path,
                                env=module_env(broker, module, env), stdout=log, stderr=subprocess.STDOUT)
        run = ModuleRun(module, proc, log_path, hub)
        try:
            yield run
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> HttpReply:
    """One real HTTP request over loopback (stdlib client, so nothing is hidden)."""
    parts = urlsplit(url)
    conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path or "/", body=body, headers=headers or {})
        resp = conn.getresponse()
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def load_file(name: str, path: Path) -> ModuleType:
    """Import a module's source file (modules/ are standalone programs, not packages)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))
