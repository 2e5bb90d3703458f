"""An edge hub address picked by the device, then taken by another process before the hub binds it (a first
deployment can take long to arrive): the device moves to another free 127.x address instead of failing."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest

import edgegen.local.device as device_module
from edgegen.local.device import Device, DeviceConfig
from edgegen.local.errors import DeviceError
from tests.support.net import free_loopback_address

pytestmark = pytest.mark.integration

MANIFEST = {"modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {}}}}}
PORT = 8883


def _config(tmp_path: Path, address: str | None) -> DeviceConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(MANIFEST))
    return DeviceConfig(state_dir=tmp_path / "state", manifest=manifest, solution_dir=tmp_path, address=address,
                        https_port=None, control_api=False)


def _squat(port: int = PORT) -> tuple[str, socket.socket]:
    """A 127.x address whose port this test holds (listening) for as long as it keeps the socket."""
    for _ in range(20):
        address = free_loopback_address(port)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((address, port))
        except OSError:  # taken between the check and the bind by a process beside us: try another
            s.close()
            continue
        s.listen()
        return address, s
    raise RuntimeError("no 127.x address to hold")


def test_a_picked_address_taken_meanwhile_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken, squatter = _squat()
    real = device_module.pick_address
    calls: list[tuple[Any, ...]] = []

    def pick(*args: Any, **kwargs: Any) -> str:  # the first pick returns the address we hold: taken "meanwhile"
        calls.append(kwargs.get("skip", ()))
        return taken if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(device_module, "pick_address", pick)
    device = Device(_config(tmp_path, None))
    assert device.address == taken

    async def main() -> str:
        async with device:
            assert device.gateway is not None
            return device.address

    try:
        moved = asyncio.run(main())
    finally:
        squatter.close()
    assert moved != taken and moved.startswith("127.") and calls[1] == (taken,)


def test_a_given_address_that_is_taken_is_an_error(tmp_path: Path) -> None:
    address, squatter = _squat()
    try:
        with pytest.raises(DeviceError) as info:
            asyncio.run(Device(_config(tmp_path, address)).start())
    finally:
        squatter.close()
    assert f"cannot listen on {address}:{PORT}" in info.value.message and "--address" in (info.value.hint or "")


def test_a_device_restarted_after_a_crash_keeps_its_address_when_free(tmp_path: Path) -> None:
    """Modules that outlived a killed device reconnect to the address they were given: the device.json the killed
    device left names it, and a device started without --address takes it again (another when it is taken)."""
    first = Device(_config(tmp_path, None))
    earlier = free_loopback_address(PORT)
    assert earlier != first.address or earlier == "127.0.0.1"
    first.store.close()
    first.sessions.close()
    if first.local_upstream is not None:
        first.local_upstream.close()
    (tmp_path / "state" / "device.json").write_text(json.dumps({"pid": 1, "address": earlier}))
    again = Device(_config(tmp_path, None))
    assert again.address == earlier
    for store in (again.store, again.sessions, again.local_upstream):
        if store is not None:
            store.close()
    with socket.socket() as squatter:
        squatter.bind((earlier, PORT))
        squatter.listen()
        moved = Device(_config(tmp_path, None))
        assert moved.address != earlier
        for store in (moved.store, moved.sessions, moved.local_upstream):
            if store is not None:
                store.close()
