"""Direct methods from the hub to the device's modules, relayed the way edgeHub's cloud proxy relays them.

- A module that enables direct methods on the local edge hub gets its hub connection subscribed to methods too
  (``client.on_method_request_received``); when it disconnects locally the hub subscription is dropped, so the
  hub answers 404 "not online" (edgeHub closes the module's cloud connection then).
- A method request from the hub is invoked on the module over the local gateway and its answer sent back. As in
  edgeHub, the local call may take up to 5 min 30 s (the hub's own ``responseTimeoutInSeconds`` ends the caller's
  wait first); a module gone in between gives status 0 with no payload (edgeHub's empty MethodResponse).
- ``$edgeAgent`` answers ``ping`` and ``RestartModule`` itself (``edgegen.local.agentmethods``), as edgeAgent does.

SDK handlers run on the SDK's threads: they only hand the request to this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

__all__ = ["AGENT", "LOCAL_CALL_TIMEOUT", "MethodRelay", "MethodTarget"]

log = logging.getLogger(__name__)

AGENT = "$edgeAgent"
LOCAL_CALL_TIMEOUT = 5 * 60 + 30.0  # edgeHub's DeviceMethodMaxResponseTimeout for calls from the cloud
RETRY_FIRST, RETRY_MAX = 1.0, 30.0  # seconds between tries to (un)subscribe methods on an unreachable hub


class MethodTarget(Protocol):
    """The device the relay calls (``edgegen.local.device.Device``)."""

    async def invoke_module_method(self, module: str, name: str, payload: Any, timeout: float = 30.0,
                                   connect_timeout: float = 0.0) -> tuple[int, Any]: ...


class HubClients(Protocol):
    """Where the relay finds each module's hub connection (``EdgeLink``)."""

    async def client(self, module_id: str) -> Any: ...


class MethodRelay:
    """Register with ``device.hub.listeners``; ``await start()`` after the link started, ``close()`` at the end."""

    def __init__(self, clients: HubClients, target: MethodTarget) -> None:
        self.clients = clients
        self.target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted: dict[str, bool] = {}  # module -> should its hub connection take method calls
        self._applied: dict[str, bool] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wanted[AGENT] = True
        await self._sync(AGENT)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- ClientEvents (from the local edge hub, on this loop) -----------------------------------------
    def methods_subscribed(self, module: str) -> None:
        self._want(module, True)

    def module_disconnected(self, module: str) -> None:
        if self._wanted.get(module):
            self._want(module, False)

    def _want(self, module: str, on: bool) -> None:
        self._wanted[module] = on
        task = asyncio.get_running_loop().create_task(self._sync(module), name=f"methods-{module}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync(self, module: str) -> None:
        delay = RETRY_FIRST
        async with self._locks.setdefault(module, asyncio.Lock()):
            while (wanted := self._wanted.get(module, False)) != self._applied.get(module, False):
                try:
                    client = await self.clients.client(module)
                    handler = self._handler_for(module, client) if wanted else None
                    # the SDK's setter waits for the hub's SUBACK: keep it off this loop
                    await asyncio.to_thread(setattr, client, "on_method_request_received", handler)
                except Exception as exc:  # hub unreachable: try again, less and less often
                    log.warning("cannot %s direct methods for %s on the hub (again in %.0f s): %s",
                                "enable" if wanted else "disable", module, delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                self._applied[module] = wanted

    def _handler_for(self, module: str, client: Any) -> Any:
        loop = self._loop
        assert loop is not None

        def on_request(request: Any) -> None:  # an SDK thread: hand over, never block
            asyncio.run_coroutine_threadsafe(self._answer(module, client, request), loop)

        return on_request

    async def _answer(self, module: str, client: Any, request: Any) -> None:
        from azure.iot.device import MethodResponse

        from edgegen.local.mqtt.handler import GatewayError

        try:
            status, payload = await self.target.invoke_module_method(module, request.name, request.payload,
                                                                     LOCAL_CALL_TIMEOUT)
        except GatewayError as exc:
            log.info("method %s on %s: %s", request.name, module, exc.message)
            status, payload = 0, None
        try:
            await client.send_method_response(MethodResponse.create_from_method_request(request, status, payload))
        except Exception as exc:  # the hub connection dropped: the caller times out, as with edgeHub
            log.info("answer to method %s on %s not sent: %s", request.name, module, exc)
