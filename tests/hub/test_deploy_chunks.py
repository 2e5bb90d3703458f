"""A configuration applied to many devices is applied a chunk at a time, with the event loop free between chunks,
and ends where the one-step path ends."""

from __future__ import annotations

import asyncio

from edgegen.local.hubstandin.backend import HubBackend
from edgegen.local.hubstandin.store import MemoryHubStore


def fleet(n: int) -> HubBackend:
    backend = HubBackend(MemoryHubStore(), "127.0.0.1:8443")
    for i in range(n):
        backend.put_device(f"d{i}", {})
        backend.update_twin(f"d{i}", None, {"tags": {"env": "prod" if i % 2 else "dev"}})
    return backend


CONFIG = {"content": {"deviceContent": {"properties.desired.cfg": {"v": 7}}},
          "targetCondition": "tags.env = 'prod'", "priority": 1}


def test_chunked_apply_yields_between_chunks_and_matches_the_one_step_apply() -> None:
    backend, reference = fleet(250), fleet(250)
    reference.put_configuration("c", CONFIG)
    turns: list[int] = []

    async def run() -> None:
        async def ticker() -> None:
            while True:
                turns.append(sum(1 for t in backend.twins.values() if t["desired"].get("cfg")))
                await asyncio.sleep(0)

        tick = asyncio.create_task(ticker())
        backend.put_configuration("c", CONFIG, defer=True)
        await backend.recompute_in_chunks(chunk=50)
        tick.cancel()

    asyncio.run(run())
    assert turns[:5] == [25, 50, 75, 100, 125]  # the loop ran after each chunk of 50 devices (25 targeted)
    def desired(b: HubBackend, device: str) -> dict:
        return {k: v for k, v in b.get_twin(device)["properties"]["desired"].items() if k != "$metadata"}

    for i in range(250):
        assert desired(backend, f"d{i}") == desired(reference, f"d{i}")
        assert backend.get_twin(f"d{i}").get("configurations") == reference.get_twin(f"d{i}").get("configurations")

    async def delete() -> None:
        await backend.recompute_in_chunks(module_twins=backend.delete_configuration("c", defer=True))

    asyncio.run(delete())
    reference.delete_configuration("c")
    assert backend.get_twin("d1").get("configurations") == reference.get_twin("d1").get("configurations")
