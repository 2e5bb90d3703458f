"""The stand-in's lifetime: state directory, certificates, the HTTPS listener (and the MQTT side unless turned off).

State directory layout (default ``.state/hub``)::

    hub.sqlite      registry, twins, configurations, D2C messages (SQLite, WAL)
    ca.pem          the local CA (clients trust it: REQUESTS_CA_BUNDLE / EdgeModuleCACertificateFile)
    server.pem      server certificate for the hub's address (SAN localhost + the IP), key 0600
    hub.json        how to reach the running hub: connection string, addresses, CA path, pid

Listeners on the address: HTTPS (REST, ``port``), MQTT 8883 (devices), AMQP 5671 (service side: the
Event Hub-compatible stream, cloud-to-device messages and feedback). The device-to-cloud stream's retention
(``retention_days``, ``retention_bytes``) is applied at start and every minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from edgegen.common.certs import ensure_ca, ensure_server_cert
from edgegen.local.hubstandin.auth import DeviceScopeAuthenticator, ServiceAuthenticator
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.http import make_app
from edgegen.local.hubstandin.info import HubInfo, read_hub_info
from edgegen.local.hubstandin.mqtt import MQTT_PORT, start_hub_gateway
from edgegen.local.hubstandin.store import SqliteHubStore

__all__ = ["HubInfo", "HubStandIn", "read_hub_info"]

DEFAULT_PORT = 8443
DEFAULT_RETENTION_DAYS = 1.0  # IoT Hub's default for the built-in endpoint
DEFAULT_RETENTION_BYTES = 256 * 1024 * 1024
RETENTION_INTERVAL = 60.0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


class HubStandIn:
    """``async with HubStandIn(state_dir, address) as hub:`` serves until the block ends."""

    def __init__(self, state_dir: Path, address: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 mqtt: bool = True, amqp: bool = True, retention_days: float = DEFAULT_RETENTION_DAYS,
                 retention_bytes: int = DEFAULT_RETENTION_BYTES) -> None:
        if not address.startswith("127."):
            from edgegen.local.hubstandin.errors import InvalidArgument

            raise InvalidArgument(f"address {address!r} is not a loopback address",
                                  hint="the local hub binds only to 127.x addresses")
        self.state_dir = Path(state_dir)
        self.address = address
        self.port = port
        self.want_mqtt = mqtt
        self.want_amqp = amqp
        self.retention_days = retention_days
        self.retention_bytes = retention_bytes
        self._amqp: Any = None
        self._retention: asyncio.Task[None] | None = None
        # on 443 the host name is the bare address, as IoT Hub's are
        self.host_name = address if port == 443 else f"{address}:{port}"
        self.backend: HubBackend | None = None
        self._runner: web.AppRunner | None = None
        self._store: SqliteHubStore | None = None
        self._mqtt: Any = None
        self.info: HubInfo | None = None

    async def __aenter__(self) -> HubStandIn:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ca = ensure_ca(self.state_dir)
        cert = ensure_server_cert(ca, self.state_dir, "server", ("localhost", self.address))
        self._store = SqliteHubStore(self.state_dir / "hub.sqlite")
        self.backend = HubBackend(self._store, self.host_name)
        auth = ServiceAuthenticator(self.host_name, self.backend.policies)
        device_scope = DeviceScopeAuthenticator((self.address, self.host_name), self.backend.device_scope_keys)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
        self._runner = web.AppRunner(make_app(self.backend, auth, device_scope), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address, self.port, ssl_context=ctx, reuse_address=True)
        try:
            where = f"{self.address}:{self.port}"
            await site.start()
            mqtt_port = None
            if self.want_mqtt:
                where = f"{self.address}:8883"
                mqtt_port = await self._start_mqtt(ctx_files=(str(cert.cert_path), str(cert.key_path)))
            amqp_port = None
            if self.want_amqp:
                from edgegen.local.hubstandin.amqp.endpoint import AMQP_PORT, AmqpEndpoint
                from edgegen.local.mqtt import server_ssl_context

                where = f"{self.address}:{AMQP_PORT}"
                scopes = (self.address, self.host_name)
                self._amqp = AmqpEndpoint(self.backend, self.address,
                                          server_ssl_context(str(cert.cert_path), str(cert.key_path)), scopes)
                await self._amqp.start()
                amqp_port = AMQP_PORT
        except OSError as exc:
            await self._close()
            from edgegen.local.hubstandin.errors import HubError

            raise HubError(f"cannot listen on {where}: {exc.strerror or exc}",
                           hint="another hub or edge device may use it; pass another --address, e.g. 127.0.0.9"
                           ) from None
        except BaseException:
            await self._close()
            raise
        self.prune()
        self._retention = asyncio.create_task(self._prune_every(RETENTION_INTERVAL))
        eh_cs = self.backend.event_hub_connection_string(self.address) if amqp_port else None
        self.info = HubInfo(self.host_name, self.address, self.port, self.backend.connection_string(),
                            str(ca.cert_path), mqtt_port, os.getpid(), amqp_port, eh_cs)
        _write_atomic(self.state_dir / "hub.json", json.dumps(self.info.to_dict(), indent=2))
        return self

    async def _start_mqtt(self, ctx_files: tuple[str, str]) -> int:
        assert self.backend is not None
        self._mqtt = await start_hub_gateway(self.backend, self.address, ctx_files, self.state_dir)
        return MQTT_PORT

    def prune(self) -> int:
        """Apply the stream's retention now; return how many messages went."""
        assert self._store is not None
        cutoff = int((time.time() - self.retention_days * 86400) * 1000)
        return self._store.prune(cutoff, self.retention_bytes)

    async def _prune_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.prune()

    async def _close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            self._retention = None
        if self._amqp is not None:
            await self._amqp.close()
            self._amqp = None
        if self._mqtt is not None:
            await self._mqtt.close()
            self._mqtt = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __aexit__(self, *exc: object) -> None:
        info = read_hub_info(self.state_dir)
        if info is not None and info.pid == os.getpid():
            (self.state_dir / "hub.json").unlink(missing_ok=True)
        await self._close()

    async def serve_forever(self, duration: float | None = None) -> None:
        await asyncio.sleep(duration if duration is not None else float("inf"))
