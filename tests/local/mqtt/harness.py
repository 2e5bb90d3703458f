"""A real MqttGateway on a fresh 127.x:8883 in a background event loop, for tests driving the real device SDK."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from edgegen.common.certs import ensure_ca, ensure_server_cert
from edgegen.common.sas import generate_key
from edgegen.local.mqtt import (
    BaseGatewayHandler,
    Identity,
    MqttGateway,
    SasAuthenticator,
    SessionStore,
    TelemetryMessage,
    server_ssl_context,
)
from tests.support.loopthread import LoopThread
from tests.support.net import free_loopback_address

T = TypeVar("T")
HUB = "testhub.azure-devices.net"


class RecordingHandler(BaseGatewayHandler):
    """Records what the gateway hands over; twins kept in dicts (desired from ``desired``)."""

    def __init__(self) -> None:
        self.telemetry: queue.Queue[tuple[Identity, TelemetryMessage]] = queue.Queue()
        self.events: queue.Queue[tuple[str, Identity, Any]] = queue.Queue()
        self.desired: dict[Identity, dict[str, Any]] = {}
        self.reported: dict[Identity, dict[str, Any]] = {}
        self.reported_version: dict[Identity, int] = {}
        self.telemetry_gate: asyncio.Event | None = None  # when set, on_telemetry waits for it
        self.fail_with: Exception | None = None  # when set, telemetry and twin GET raise it

    async def on_connect(self, identity: Identity) -> None:
        self.events.put(("connect", identity, None))

    async def on_disconnect(self, identity: Identity) -> None:
        self.events.put(("disconnect", identity, None))

    async def on_subscribe(self, identity: Identity, topic_filters: list[str]) -> None:
        self.events.put(("subscribe", identity, topic_filters))

    async def on_session_resumed(self, identity: Identity, topic_filters: list[str]) -> None:
        self.events.put(("resumed", identity, topic_filters))

    async def on_telemetry(self, identity: Identity, message: TelemetryMessage) -> None:
        if self.telemetry_gate is not None:
            await self.telemetry_gate.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.telemetry.put((identity, message))

    async def on_twin_get(self, identity: Identity) -> tuple[int, dict[str, Any]]:
        if self.fail_with is not None:
            raise self.fail_with
        desired = {"$version": 1, **self.desired.get(identity, {})}
        reported = {"$version": self.reported_version.get(identity, 1), **self.reported.get(identity, {})}
        return 200, {"desired": desired, "reported": reported}

    async def on_twin_reported(self, identity: Identity, patch: dict[str, Any]) -> tuple[int, int | None]:
        self.reported.setdefault(identity, {}).update(patch)
        version = self.reported_version.get(identity, 1) + 1
        self.reported_version[identity] = version
        return 204, version


@dataclass
class GatewayHarness:
    host: str
    ca_file: Path
    keys: dict[Identity, str]
    handler: RecordingHandler
    loop: asyncio.AbstractEventLoop
    gateway: MqttGateway | None = None
    store: SessionStore | None = None
    ssl_context: Any = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def _call() -> Any:
            return fn(*args)

        return self.run(_call())

    def add_module(self, device: str, module: str) -> tuple[Identity, str]:
        identity = Identity(device, module)
        self.keys[identity] = generate_key()
        return identity, self.connection_string(identity)

    def connection_string(self, identity: Identity, key: str | None = None) -> str:
        key = key or self.keys[identity]
        parts = [f"HostName={HUB}", f"DeviceId={identity.device_id}"]
        if identity.module_id:
            parts.append(f"ModuleId={identity.module_id}")
        parts += [f"SharedAccessKey={key}", f"GatewayHostName={self.host}"]
        return ";".join(parts)

    def start_gateway(self, store: SessionStore | None = None) -> MqttGateway:
        auth = SasAuthenticator(lambda ident: self.keys.get(ident), host=HUB, allow_devices=True)

        async def _start() -> MqttGateway:
            gw = MqttGateway(auth, self.handler, store)
            await gw.start(self.host, 8883, self.ssl_context)
            return gw

        self.store = store
        self.gateway = self.run(_start())
        return self.gateway

    def stop_gateway(self) -> None:
        if self.gateway is not None:
            self.run(self.gateway.stop())
            self.gateway = None


@contextmanager
def gateway_harness(tmp: Path, store: SessionStore | None = None) -> Iterator[GatewayHarness]:
    host = free_loopback_address(8883)
    ca = ensure_ca(tmp / "certs")
    pair = ensure_server_cert(ca, tmp / "certs", "edgehub", ["localhost", host])
    with LoopThread("gateway-loop") as loop_thread:
        harness = GatewayHarness(host, ca.cert_path, {}, RecordingHandler(), loop_thread.loop)
        harness.ssl_context = server_ssl_context(str(pair.cert_path), str(pair.key_path))
        try:
            harness.start_gateway(store)
            yield harness
        finally:
            harness.stop_gateway()
