"""The stand-in's lifetime: state directory, certificates, the HTTPS listener (and the MQTT side unless turned off).

State directory layout (default ``.state/hub``)::

    hub.sqlite      registry, twins, configurations, D2C messages (SQLite, WAL)
    ca.pem          the local CA (clients trust it: REQUESTS_CA_BUNDLE / EdgeModuleCACertificateFile)
    server.pem      server certificate for the hub's address (SAN localhost + the IP), key 0600
    (the folder is 0700, every file with a key 0600, from creation: see docs/security.md)
    hub.json        how to reach the running hub: connection string, addresses, CA path, pid, device capacity
    hub-sessions.db MQTT persistent sessions

Listeners on the address: HTTPS (REST) on 443 as IoT Hub has it, so that ``HostName`` is the bare address every
SDK takes as a host name (a ``port`` given explicitly is used as is; by default, when 443 cannot be bound — not
root, or taken — it falls back to 8443 and says so, and ``HostName`` then carries ``:8443``); MQTT 8883
(devices); AMQP 5671 (service side: the Event Hub-compatible stream, cloud-to-device messages and feedback).

At start the open-files limit is raised to the hard limit; it decides how many devices may be connected at once
(``device_capacity``, in hub.json; the ones beyond get CONNACK "server unavailable"). The device-to-cloud store's
retention (``retention_days``, ``retention_bytes``; ``edgegen.common.retention``) is applied at start and every
minute, and the space it frees is given back to the file system.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from edgegen.common.certs import ensure_ca, ensure_server_cert
from edgegen.common.fdlimit import connection_capacity, raise_nofile_limit
from edgegen.common.private import private_tree, write_private
from edgegen.common.retention import DEFAULT_RETENTION_BYTES, DEFAULT_RETENTION_DAYS, INTERVAL, Retention
from edgegen.common.sqlitespace import file_size
from edgegen.local.hubstandin.auth import DeviceScopeAuthenticator, ServiceAuthenticator
from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.http import make_app
from edgegen.local.hubstandin.info import HubInfo, read_hub_info
from edgegen.local.hubstandin.mqtt import MQTT_PORT, start_hub_gateway
from edgegen.local.hubstandin.store import SqliteHubStore

__all__ = ["DEFAULT_RETENTION_BYTES", "DEFAULT_RETENTION_DAYS", "FALLBACK_PORT", "HTTPS_PORT", "HubInfo",
           "HubStandIn", "host_name_for", "read_hub_info"]

log = logging.getLogger(__name__)
HTTPS_PORT = 443  # IoT Hub's
FALLBACK_PORT = 8443
RETENTION_INTERVAL = INTERVAL


def host_name_for(address: str, port: int) -> str:
    """The hub's host name as connection strings carry it: the bare address on 443, ``address:port`` otherwise."""
    return address if port == HTTPS_PORT else f"{address}:{port}"


class HubStandIn:
    """``async with HubStandIn(state_dir, address) as hub:`` serves until the block ends. ``port=None``: 443, else
    8443 with a warning (``port_note``)."""

    def __init__(self, state_dir: Path, address: str = "127.0.0.1", port: int | None = None,
                 mqtt: bool = True, amqp: bool = True, retention_days: float = DEFAULT_RETENTION_DAYS,
                 retention_bytes: int = DEFAULT_RETENTION_BYTES, max_connections: int | None = None) -> None:
        if not address.startswith("127."):
            from edgegen.local.hubstandin.errors import InvalidArgument

            raise InvalidArgument(f"address {address!r} is not a loopback address",
                                  hint="the local hub binds only to 127.x addresses")
        self.state_dir = Path(state_dir)
        self.address = address
        self.requested_port = port
        self.port = port if port is not None else HTTPS_PORT
        self.port_note: str | None = None
        self.want_mqtt = mqtt
        self.want_amqp = amqp
        self.retention = Retention(retention_days, retention_bytes)
        self.max_connections = max_connections
        self.open_files = (0, 0)  # soft limit before and after raising it
        self._amqp: Any = None
        self._retention: asyncio.Task[None] | None = None
        self.host_name = host_name_for(address, self.port)
        self.backend: HubBackend | None = None
        self._runner: web.AppRunner | None = None
        self._store: SqliteHubStore | None = None
        self._mqtt: Any = None
        self.info: HubInfo | None = None

    def _bind_https(self) -> socket.socket:
        """Bind the REST listener's socket first: its port decides the host name everything else is built on."""
        ports = [self.port] if self.requested_port is not None else [HTTPS_PORT, FALLBACK_PORT]
        refused: list[str] = []
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.address, port))
            except OSError as exc:
                sock.close()
                why = exc.strerror or str(exc)
                if exc.errno == errno.EACCES:
                    why += (" (ports below 1024 need root, CAP_NET_BIND_SERVICE or "
                            "sysctl net.ipv4.ip_unprivileged_port_start=443)")
                refused.append(f"{self.address}:{port}: {why}")
                continue
            if refused:
                self.port_note = (
                    f"HTTPS is on {self.address}:{port}, not on IoT Hub's port 443 ({refused[0]}). HostName is "
                    f"{self.address}:{port} in the service connection string: the Python service SDK takes it, "
                    f"device SDKs need HostName={self.address} (what 'edgegen hub device create' prints), and "
                    "the Node SDKs cannot use it")
                log.warning("%s", self.port_note)
            self.port = port
            self.host_name = host_name_for(self.address, port)
            return sock
        from edgegen.local.hubstandin.errors import HubError

        raise HubError(f"cannot listen on {'; '.join(refused)}",
                       hint="another hub or edge device may use it; pass another --address, e.g. 127.0.0.9")

    async def __aenter__(self) -> HubStandIn:
        self.open_files = raise_nofile_limit()
        if self.max_connections is None:
            self.max_connections = connection_capacity()
        private_tree(self.state_dir)  # keys, the owner connection string, the stores: only this user
        ca = ensure_ca(self.state_dir)
        cert = ensure_server_cert(ca, self.state_dir, "server", ("localhost", self.address))
        sock = self._bind_https()
        try:
            self._store = SqliteHubStore(self.state_dir / "hub.sqlite")
        except BaseException:
            sock.close()
            raise
        self.backend = HubBackend(self._store, self.host_name)
        hosts = (self.address, f"{self.address}:{self.port}")
        auth = ServiceAuthenticator(hosts, self.backend.policies)
        device_scope = DeviceScopeAuthenticator(hosts, self.backend.device_scope_keys)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert.cert_path), str(cert.key_path))
        self._runner = web.AppRunner(make_app(self.backend, auth, device_scope, self.status), access_log=None)
        await self._runner.setup()
        site = web.SockSite(self._runner, sock, ssl_context=ctx)
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
                scopes = hosts
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
                            str(ca.cert_path), mqtt_port, os.getpid(), amqp_port, eh_cs,
                            self.max_connections if mqtt_port else None)
        write_private(self.state_dir / "hub.json", json.dumps(self.info.to_dict(), indent=2), fsync=False)
        return self

    async def _start_mqtt(self, ctx_files: tuple[str, str]) -> int:
        assert self.backend is not None
        self._mqtt = await start_hub_gateway(self.backend, self.address, ctx_files, self.state_dir,
                                             self.max_connections)
        return MQTT_PORT

    def prune(self) -> int:
        """Apply the message store's retention now, give the space back; return how many messages went."""
        assert self._store is not None
        removed = self._store.prune(self.retention.cutoff_ms(), self.retention.max_bytes)
        if removed:
            log.info("retention (%s): removed %d device-to-cloud messages", self.retention.describe(), removed)
        self._store.give_back()
        if self._mqtt is not None:
            self._mqtt.gateway.store.give_back()
        return removed

    async def _prune_every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.prune()
            except Exception:
                log.exception("applying retention failed")

    def status(self) -> dict[str, Any]:
        """Connections, capacity, the message store's size and retention, monitors (``GET /edgegen/status``)."""
        assert self._store is not None
        gateway = self._mqtt.gateway if self._mqtt is not None else None
        return {
            "connections": {"connected": len(gateway.connected_identities()) if gateway else 0,
                            "capacity": self.max_connections if gateway else 0,
                            "openFilesLimit": self.open_files[1]},
            "messageStore": {**self._store.sizes(), "retentionDays": self.retention.days,
                             "retentionBytes": self.retention.max_bytes},
            "sessionStoreBytes": file_size(self.state_dir / "hub-sessions.db"),
            "monitors": self._mqtt.feed.stats() if self._mqtt is not None else [],
        }

    async def _close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
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
