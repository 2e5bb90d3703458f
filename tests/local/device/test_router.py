"""The router with real routes and a real SQLite store; the gateway side is a recording InputDelivery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgegen.local.mqtt.topics import Identity
from edgegen.local.router import Router
from edgegen.local.store import SqliteStore
from edgegen.local.upstream import LocalUpstream, UpstreamMessage

DEV = "dev1"
ROUTES = {
    "toB": {"route": 'FROM /messages/modules/a/outputs/out1 INTO BrokeredEndpoint("/modules/b/inputs/in1")',
            "priority": 5, "timeToLiveSecs": 60},
    "urgentToB": {"route": 'FROM /messages/modules/c/* INTO BrokeredEndpoint("/modules/b/inputs/in1")',
                  "priority": 0, "timeToLiveSecs": 60},
    "shortToD": {"route": 'FROM /messages/modules/a/outputs/out1 INTO BrokeredEndpoint("/modules/d/inputs/x")',
                 "priority": 1, "timeToLiveSecs": 1},
    "hot": {"route": "FROM /messages/modules/a/* WHERE level = 'hot' INTO $upstream"},
}


class Inputs:
    """Stands where the MQTT gateway is: records deliveries, connected per module."""

    def __init__(self) -> None:
        self.online: set[str] = set()
        self.got: list[tuple[str, str, dict[str, str], bytes]] = []

    def is_connected(self, identity: Identity) -> bool:
        return identity.module_id in self.online

    def deliver_input(self, identity: Identity, input_name: str, properties: Mapping[str, str], payload: bytes,
                      qos: int = 1) -> bool:
        if identity.module_id not in self.online:
            return False
        self.got.append((str(identity.module_id), input_name, dict(properties), payload))
        return True


class FlakyUpstream(LocalUpstream):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.up = False

    def available(self) -> bool:
        return self.up

    async def send(self, messages: Sequence[UpstreamMessage]) -> None:
        if not self.up:
            raise ConnectionError("hub unreachable")
        await super().send(messages)


def _router(tmp_path: Path) -> tuple[Router, Inputs, FlakyUpstream]:
    up = FlakyUpstream(tmp_path / "up.sqlite")
    router = Router(DEV, SqliteStore(tmp_path / "store.sqlite"), up, default_ttl=100, sweep_interval=0.1)
    router.set_routes(ROUTES, "1.1")
    inputs = Inputs()
    router.attach(inputs)
    for module in ("b", "d"):
        router.inputs_subscribed(module)  # their processes subscribed (connected or not)
    return router, inputs, up


async def _send(router: Router, module: str, n: int, output: str = "out1", **props: str) -> None:
    await router.on_telemetry(Identity(DEV, module), {"n": str(n), **props},
                              {"$.on": output, "$.ct": "application/json", "$.ce": "utf-8", "$.mid": f"m{n}"},
                              b'{"v": %d}' % n)


def test_direct_delivery_carries_edgehub_property_bag(tmp_path: Path) -> None:
    async def main() -> None:
        router, inputs, up = _router(tmp_path)
        inputs.online |= {"b", "d"}
        up.up = True
        await _send(router, "a", 1, level="hot")
        await _send(router, "a", 2, output="other")  # no route
        assert router.counters.to_dict() == {"received": 2, "unrouted": 1, "direct": 3, "stored": 0}
        (mod, name, bag, body), _ = inputs.got
        assert (mod, name, body) == ("b", "in1", b'{"v": 1}')
        assert bag == {"$.mid": "m1", "$.ct": "application/json", "$.ce": "utf-8", "$.cdid": DEV, "$.cmid": "a",
                       "n": "1", "level": "hot"}
        [(_, msg)] = up.read()
        assert (msg.device_id, msg.module_id, msg.properties["level"]) == (DEV, "a", "hot")
        assert msg.system_properties["outputName"] == "out1" and msg.system_properties["messageId"] == "m1"

    asyncio.run(main())


def test_offline_module_gets_backlog_in_priority_then_arrival_order(tmp_path: Path) -> None:
    async def main() -> None:
        router, inputs, _ = _router(tmp_path)
        for i in range(5):
            await _send(router, "a", i)
        await _send(router, "c", 99, output="any")  # priority 0 beats the priority-5 backlog
        assert router.backlog()["b/in1"]["pending"] == 6 and not inputs.got
        inputs.online.add("b")
        router.module_ready("b")
        await asyncio.sleep(0.05)
        assert [p["n"] for m, _, p, _ in inputs.got if m == "b"] == ["99", "0", "1", "2", "3", "4"]
        await _send(router, "a", 5)  # no backlog left: straight through
        assert inputs.got[-1][2]["n"] == "5" and router.backlog()["b/in1"] == {"pending": 0, "delivered": 6,
                                                                                "expired": 0}

    asyncio.run(main())


def test_ttl_expiry_drops_and_counts(tmp_path: Path) -> None:
    async def main() -> None:
        router, inputs, _ = _router(tmp_path)
        await router.start()
        try:
            for i in range(3):
                await _send(router, "a", i)  # d/x has a 1 s route TTL, b/in1 60 s
            await asyncio.sleep(1.3)
            inputs.online |= {"b", "d"}
            router.module_ready("b")
            router.module_ready("d")
            await asyncio.sleep(0.3)
        finally:
            await router.stop()
        assert router.backlog()["d/x"] == {"pending": 0, "delivered": 0, "expired": 3}
        assert router.backlog()["b/in1"]["delivered"] == 3
        assert [m for m, *_ in inputs.got] == ["b", "b", "b"]

    asyncio.run(main())


def test_upstream_unreachable_keeps_messages_and_sweep_delivers_them(tmp_path: Path) -> None:
    async def main() -> None:
        router, _, up = _router(tmp_path)
        await router.start()
        try:
            for i in range(4):
                await _send(router, "a", i, level="hot")
            assert up.count() == 0 and router.backlog()["$upstream"]["pending"] == 4
            up.up = True
            deadline = time.monotonic() + 5
            while up.count() < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await router.stop()
        assert [m.properties["n"] for _, m in up.read()] == ["0", "1", "2", "3"]

    asyncio.run(main())


def test_backlog_survives_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        router, _, _ = _router(tmp_path)
        for i in range(3):
            await _send(router, "a", i)
        router.store.close()
        again, inputs, _ = _router(tmp_path)
        inputs.online.add("b")
        again.module_ready("b")
        await asyncio.sleep(0.05)
        assert [p["n"] for m, _, p, _ in inputs.got if m == "b"] == ["0", "1", "2"]

    asyncio.run(main())


def test_inputs_wait_until_a_new_process_subscribes(tmp_path: Path) -> None:
    async def main() -> None:
        router, inputs, _ = _router(tmp_path)
        inputs.online |= {"b", "d"}
        router.process_restarted("b")  # a new process: connected on its old session, handler not set yet
        await _send(router, "a", 1)
        router.module_ready("b")  # a connect alone does not release the backlog
        await asyncio.sleep(0.02)
        assert [m for m, *_ in inputs.got] == ["d"] and router.backlog()["b/in1"]["pending"] == 1
        router.inputs_subscribed("b")
        await asyncio.sleep(0.02)
        assert [m for m, *_ in inputs.got] == ["d", "b"]

    asyncio.run(main())
