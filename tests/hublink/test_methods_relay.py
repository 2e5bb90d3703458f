"""MethodRelay's bookkeeping: which hub connections take method calls, retried while the hub is unreachable
(the relay end to end, with the real SDKs and the stand-in, is tests/hub/test_edge_methods.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgegen.hublink import methods
from edgegen.hublink.methods import MethodRelay


class Connection:
    """Stands for a module's hub connection: records what the relay sets."""

    def __init__(self) -> None:
        self.on_method_request_received: Any = None
        self.changes: list[bool] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "on_method_request_received" and "changes" in self.__dict__:
            self.changes.append(value is not None)
        super().__setattr__(name, value)


class Clients:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.connections: dict[str, Connection] = {}

    async def client(self, module_id: str) -> Connection:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("hub unreachable")
        return self.connections.setdefault(module_id, Connection())


class NoTarget:
    async def invoke_module_method(self, module: str, name: str, payload: Any, timeout: float = 30.0,
                                   connect_timeout: float = 0.0) -> tuple[int, Any]:
        raise AssertionError("no method call in these tests")


async def _settle(relay: MethodRelay) -> None:
    while relay._tasks:
        await asyncio.gather(*list(relay._tasks))


def test_subscriptions_follow_the_local_module_and_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(methods, "RETRY_FIRST", 0.01)

    async def run() -> Clients:
        clients = Clients(failures=2)
        relay = MethodRelay(clients, NoTarget())
        await relay.start()  # $edgeAgent: two failures, then subscribed
        relay.methods_subscribed("sensor")
        relay.methods_subscribed("sensor")  # a second SUBSCRIBE or a resumed session: nothing new
        await _settle(relay)
        relay.module_disconnected("sensor")
        relay.module_disconnected("other")  # never subscribed: nothing to drop
        await _settle(relay)
        await relay.close()
        return clients

    clients = asyncio.run(run())
    assert clients.connections["$edgeAgent"].changes == [True]
    assert clients.connections["sensor"].changes == [True, False]
    assert "other" not in clients.connections
