"""A local edge device joining an IoT Hub (Azure or the stand-in), like edgeAgent and edgeHub do.

``EdgeLink`` connects with the real ``azure-iot-device`` (aio) SDK as the device's ``$edgeAgent`` and
``$edgeHub`` identities and, on demand, as each module; it plugs into ``edgegen.local.device`` through the
two Protocols that package defines:

- ``link.source`` — a ``DeploymentSource``: the deployment is read from the ``$edgeAgent``/``$edgeHub`` twins
  (plus each module's twin desired properties) and every desired patch yields a new deployment.
- ``link.upstream`` — an ``UpstreamSink``: ``$upstream`` messages are sent to the hub as their module's
  identity. While the hub is unreachable ``available()`` is False, so the router keeps them (store and forward)
  and sends them, in order, when it returns. Messages without a message id get a deterministic one, so a
  message sent twice (a lost acknowledgement) can be recognised downstream.
- ``link.report(status)`` patches ``$edgeAgent`` reported properties (module status, lastDesiredVersion).

Each module connects with its own key, as IoT Hub requires: before a module identity's first connection the
link ensures the identity exists and fetches its key through the service REST API with a device-scoped token
(``edgegen.hublink.moduleidentity``, what edgeAgent does); keys are cached in the device's state directory.
When a deployment no longer has a module, the link removes that module's identity (edgeAgent's job too).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgegen.common.sas import SasError, parse_connection_string
from edgegen.hub.errors import HubClientError
from edgegen.hublink.moduleidentity import ModuleIdentities

__all__ = ["EdgeLink"]

log = logging.getLogger(__name__)
SEND_TIMEOUT = 10.0


def _strip(desired: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desired.items() if not k.startswith("$")}


def message_id_for(device_id: str, module_id: str | None, enqueued: float, body: bytes) -> str:
    digest = hashlib.sha256(f"{device_id}/{module_id}/{enqueued!r}/".encode() + body).hexdigest()
    return digest[:32]


class EdgeLink:
    def __init__(self, connection_string: str, ca_file: str | None = None, *, state_dir: Path | None = None,
                 rest_host: str | None = None) -> None:
        try:
            parts = parse_connection_string(connection_string)
        except SasError as exc:
            raise HubClientError(f"device connection string: {exc.message}") from None
        missing = [k for k in ("HostName", "DeviceId", "SharedAccessKey") if k not in parts]
        if missing:
            raise HubClientError(f"the device connection string lacks {', '.join(missing)}",
                                 hint="use the string printed by 'edgegen hub device create DEVICE --edge'")
        self.host = parts["HostName"]
        self.device_id = parts["DeviceId"]
        self.key = parts["SharedAccessKey"]
        self.ca_pem = Path(ca_file).read_text() if ca_file else None
        self.identities = ModuleIdentities(self.host, self.device_id, self.key, rest_host=rest_host,
                                           ca_file=ca_file, cache_dir=state_dir)
        self.clients: dict[str, Any] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.desired: dict[str, dict[str, Any]] = {}
        self.agent_version = 0
        self.hub_version = 0
        self._hub_reported: int | None = None
        self._dirty = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_reported: str | None = None
        self._reported_modules: set[str] = set()
        self.source = _HubSource(self)
        self.upstream = _HubUpstream(self)

    # ---- clients -------------------------------------------------------------------------------------
    async def client(self, module_id: str) -> Any:
        """The hub connection of one of the device's identities (``$edgeAgent``, ``$edgeHub`` or a module),
        connected on first use."""
        return await self._client(module_id)

    async def _client(self, module_id: str) -> Any:
        client = self.clients.get(module_id)
        if client is not None:
            return client
        lock = self._locks.setdefault(module_id, asyncio.Lock())
        async with lock:  # one client per identity, even when two sends race for a new module
            client = self.clients.get(module_id)
            return client if client is not None else await self._connect(module_id)

    async def _connect(self, module_id: str) -> Any:
        cached = self.identities.cached(module_id) is not None
        key = await asyncio.to_thread(self.identities.key, module_id)
        try:
            return await self._open(module_id, key)
        except HubClientError:
            if not cached:
                raise
        # a cached key the hub refuses (identity re-created, hub state reset): fetch it again, once
        log.info("module %s: cached key refused; fetching it from the hub again", module_id)
        key = await asyncio.to_thread(self.identities.key, module_id, refresh=True)
        return await self._open(module_id, key)

    async def _open(self, module_id: str, module_key: str) -> Any:
        from azure.iot.device.aio import IoTHubModuleClient

        cs = f"HostName={self.host};DeviceId={self.device_id};ModuleId={module_id};SharedAccessKey={module_key}"
        kwargs: dict[str, Any] = {"keep_alive": 30, "connection_retry_interval": 2}
        if self.ca_pem:
            kwargs["server_verification_cert"] = self.ca_pem
        client = IoTHubModuleClient.create_from_connection_string(cs, **kwargs)
        self.clients[module_id] = client

        loop = asyncio.get_running_loop()

        def mark_dirty() -> None:
            loop.call_soon_threadsafe(self._dirty.set)

        def on_patch(patch: dict[str, Any]) -> None:  # runs on the SDK's handler thread
            mark_dirty()

        def on_state() -> None:
            if client.connected:
                mark_dirty()  # re-read twins after a reconnect: patches may have been missed

        try:
            client.on_connection_state_change = on_state
            await client.connect()
            # the SDK's setter blocks until the hub acknowledges the subscription: keep it off this loop
            await asyncio.to_thread(setattr, client, "on_twin_desired_properties_patch_received", on_patch)
        except Exception as exc:
            self.clients.pop(module_id, None)
            await client.shutdown()
            raise HubClientError(f"cannot connect to the hub at {self.host} as {self.device_id}/{module_id} "
                                 f"({type(exc).__name__}: {exc})",
                                 hint="is the hub running, and is the device enabled?") from None
        return client

    async def start(self) -> EdgeLink:
        self._loop = asyncio.get_running_loop()
        await self._client("$edgeAgent")
        await self._client("$edgeHub")
        return self

    async def close(self) -> None:
        clients, self.clients = self.clients, {}
        for client in clients.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.shutdown(), 10)

    async def __aenter__(self) -> EdgeLink:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- deployment from twins -----------------------------------------------------------------------
    async def _twin_desired(self, module_id: str) -> dict[str, Any]:
        client = await self._client(module_id)
        twin = await asyncio.wait_for(client.get_twin(), SEND_TIMEOUT)
        return dict(twin.get("desired") or {})

    async def read_modules_content(self) -> dict[str, Any] | None:
        """The deployment the twins describe, as modulesContent; None while nothing is deployed."""
        agent = await self._twin_desired("$edgeAgent")
        if not _strip(agent):
            return None
        self.agent_version = int(agent.get("$version") or 0)
        hub = await self._twin_desired("$edgeHub")
        self.hub_version = int(hub.get("$version") or 0)
        content: dict[str, Any] = {"$edgeAgent": {"properties.desired": _strip(agent)},
                                   "$edgeHub": {"properties.desired": _strip(hub)}}
        for name in (agent.get("modules") or {}):
            content[name] = {"properties.desired": _strip(await self._twin_desired(name))}
        return content

    async def wait_for_deployment(self) -> Any:
        from edgegen.local.deployment import parse_deployment

        announced = False
        while True:
            self._dirty.clear()
            content = await self.read_modules_content()
            if content is not None:
                return parse_deployment(content, source=f"hub {self.host} device {self.device_id}")
            if not announced:
                log.info("no deployment for %s yet; waiting for one (edgegen deploy -d %s)", self.device_id,
                         self.device_id)
                announced = True
            await self._dirty.wait()

    async def prune_identities(self, modules_content: Mapping[str, Any]) -> None:
        """Remove the identities (and connections) of modules no longer in the deployment."""
        agent = (modules_content.get("$edgeAgent") or {}).get("properties.desired") or {}
        keep = set(agent.get("modules") or {})
        try:
            gone = await asyncio.to_thread(self.identities.prune, keep)
        except HubClientError as exc:  # the next deployment retries
            log.info("removing module identities no longer deployed failed: %s", exc.message)
            return
        for module_id in gone:
            log.info("module %s left the deployment: its identity is removed", module_id)
            client = self.clients.pop(module_id, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.shutdown(), 10)

    # ---- reporting -----------------------------------------------------------------------------------
    async def report(self, modules_status: Mapping[str, Any], code: int = 200, description: str = "") -> None:
        """Patch ``$edgeAgent`` reported properties when something changed (and ``$edgeHub``'s
        ``lastDesiredVersion``/``lastDesiredStatus`` when its desired version moved, as edgeHub reports them)."""
        await self._report_hub()
        modules: dict[str, Any] = {name: None for name in self._reported_modules - set(modules_status)}
        modules.update(modules_status)  # modules gone from the deployment are removed (null) from reported
        patch = {"schemaVersion": "1.1", "lastDesiredVersion": self.agent_version,
                 "lastDesiredStatus": {"code": code, "description": description}, "modules": modules}
        text = json.dumps(patch, sort_keys=True, default=str)
        if text == self._last_reported:
            return
        client = self.clients.get("$edgeAgent")
        if client is None or not client.connected:
            return
        try:
            await asyncio.wait_for(client.patch_twin_reported_properties(json.loads(text)), SEND_TIMEOUT)
            self._last_reported = text
            self._reported_modules = set(modules_status)
        except Exception as exc:  # the next report retries
            log.info("reporting $edgeAgent status failed: %s", exc)


    async def _report_hub(self) -> None:
        client = self.clients.get("$edgeHub")
        if self.hub_version == self._hub_reported or client is None or not client.connected:
            return
        patch = {"schemaVersion": "1.2", "lastDesiredVersion": self.hub_version,
                 "lastDesiredStatus": {"code": 200, "description": ""}}
        try:
            await asyncio.wait_for(client.patch_twin_reported_properties(patch), SEND_TIMEOUT)
            self._hub_reported = self.hub_version
        except Exception as exc:  # the next report retries
            log.info("reporting $edgeHub status failed: %s", exc)


class _HubSource:
    """``DeploymentSource`` over the hub's twins."""

    def __init__(self, link: EdgeLink) -> None:
        self.link = link
        self.path = f"hub:{link.host}/{link.device_id}"
        self._seen: str | None = None

    async def current(self) -> Any:
        deployment = await self.link.wait_for_deployment()
        self._seen = json.dumps(deployment.modules_content, sort_keys=True)
        await self.link.prune_identities(deployment.modules_content)
        return deployment

    async def changes(self) -> AsyncIterator[Any]:
        from edgegen.local.deployment import parse_deployment
        from edgegen.local.errors import DeviceError

        while True:
            await self.link._dirty.wait()
            self.link._dirty.clear()
            try:
                content = await self.link.read_modules_content()
            except Exception as exc:  # hub unreachable: keep the running deployment, retry on reconnect
                log.info("reading the deployment from the hub failed: %s", exc)
                continue
            if content is None:
                continue
            text = json.dumps(content, sort_keys=True)
            if text == self._seen:
                continue
            try:
                deployment = parse_deployment(content, source=self.path)
            except DeviceError as exc:
                log.error("deployment from the hub not applied: %s", exc.render())
                await self.link.report({}, 400, exc.message)
                continue
            self._seen = text
            await self.link.prune_identities(content)
            yield deployment


_SYSTEM = {"messageId": "message_id", "correlationId": "correlation_id", "contentType": "content_type",
           "contentEncoding": "content_encoding", "userId": "user_id"}


class _HubUpstream:
    """``UpstreamSink`` that sends to the hub as each message's module identity."""

    def __init__(self, link: EdgeLink) -> None:
        self.link = link

    def available(self) -> bool:
        client = self.link.clients.get("$edgeHub")
        return bool(client is not None and client.connected)

    async def send(self, messages: Sequence[Any]) -> None:
        from azure.iot.device import Message

        for m in messages:
            module_id = m.module_id or "$edgeHub"
            client = await self.link._client(module_id)
            msg = Message(m.body)
            for name, attr in _SYSTEM.items():
                value = m.system_properties.get(name)
                if value:
                    setattr(msg, attr, value)
            if not msg.message_id:
                msg.message_id = message_id_for(m.device_id, m.module_id, m.enqueued_time, m.body)
            for key, value in m.properties.items():
                msg.custom_properties[key] = value
            await asyncio.wait_for(client.send_message(msg), SEND_TIMEOUT)
