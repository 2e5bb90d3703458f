"""An edge hub address picked by the device, then taken by another process before the hub binds it (a first
deployment can take long to arrive): the device moves to another free 127.x address instead of failing."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from edgegen.local.device import Device, DeviceConfig
from edgegen.local.errors import DeviceError

pytestmark = pytest.mark.integration

MANIFEST = {"modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {}}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {}}}}}


def _config(tmp_path: Path, address: str | None) -> DeviceConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    manifest = tmp_path / "deployment.json"
    manifest.write_text(json.dumps(MANIFEST))
    return DeviceConfig(state_dir=tmp_path / "state", manifest=manifest, solution_dir=tmp_path, address=address,
                        https_port=None, control_api=False)


def _occupy(address: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((address, port))
    s.listen()
    return s


def test_a_picked_address_taken_meanwhile_is_replaced(tmp_path: Path) -> None:
    device = Device(_config(tmp_path, None))
    picked = device.address
    squatter = _occupy(picked, device.config.port)  # someone else takes it between the pick and the bind

    async def main() -> str:
        async with device:
            assert device.gateway is not None
            return device.address

    try:
        moved = asyncio.run(main())
    finally:
        squatter.close()
    assert moved != picked and moved.startswith("127.")


def test_a_given_address_that_is_taken_is_an_error(tmp_path: Path) -> None:
    probe = Device(_config(tmp_path / "probe", None))  # a free address to take
    address = probe.address
    squatter = _occupy(address, probe.config.port)
    try:
        with pytest.raises(DeviceError) as info:
            asyncio.run(Device(_config(tmp_path, address)).start())
    finally:
        squatter.close()
    assert f"cannot listen on {address}:" in info.value.message and "--address" in (info.value.hint or "")
