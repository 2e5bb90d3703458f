"""Start a real Mosquitto (Debian ``mosquitto``) on loopback, optionally with TLS from a local CA.

Used by module tests (one broker per module: a shared broker mixes twin and method traffic) and by
bench/edgehub.py as the reference broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgegen.common.certs import ensure_ca, ensure_server_cert
from tests.support.net import free_loopback_address, free_port, wait_for_port
from tests.support.proc import stop_process

__all__ = ["MosquittoBroker", "mosquitto_path", "run_mosquitto"]


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


@dataclass(frozen=True)
class MosquittoBroker:
    host: str
    port: int
    ca_file: Path | None  # None for a plaintext listener
    directory: Path


@contextmanager
def run_mosquitto(
    *, tls: bool = True, host: str | None = None, port: int | None = None, persistence: bool = True,
    workdir: Path | None = None,
) -> Iterator[MosquittoBroker]:
    """A Mosquitto with one listener: TLS on ``host:8883`` (a fresh 127.x) by default, else plaintext."""
    exe = mosquitto_path()
    if exe is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    own_tmp = workdir is None
    directory = Path(tempfile.mkdtemp(prefix="mosq-")) if own_tmp else Path(workdir)  # type: ignore[arg-type]
    directory.mkdir(parents=True, exist_ok=True)
    if tls:
        port = port or 8883
        host = host or free_loopback_address(port)
    else:
        host = host or "127.0.0.1"
        port = port or free_port(host)
    lines = [
        f"listener {port} {host}",
        "allow_anonymous true",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {directory}/",
        "log_dest stderr",
        "log_type error",
        "max_queued_messages 100000",
    ]
    if os.geteuid() == 0:
        # As root, Mosquitto drops to user "mosquitto", which cannot read our 0700 temp dir and 0600 key.
        lines.append("user root")
    ca_file = None
    if tls:
        ca = ensure_ca(directory / "certs")
        server = ensure_server_cert(ca, directory / "certs", "mosquitto", ["localhost", host])
        ca_file = ca.cert_path
        lines += [f"cafile {ca.cert_path}", f"certfile {server.cert_path}", f"keyfile {server.key_path}"]
    conf = directory / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    log = open(directory / "mosquitto.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(host, port)
        yield MosquittoBroker(host, port, ca_file, directory)
    finally:
        stop_process(proc, grace=5, kill_wait=None)
        log.close()
        if own_tmp:
            shutil.rmtree(directory, ignore_errors=True)
