"""The device's control API answers only requests that carry the token from ``<state>/control.token`` (0600); the
CLI's client reads it. (tests/security/test_local_secrets.py attacks a real device as another user.)"""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edgegen.local.control import TOKEN_FILE, ControlApi, ControlClient
from edgegen.local.errors import DeviceError


class _Agent:
    def __init__(self) -> None:
        self.stopped: list[str] = []

    def status(self) -> dict[str, Any]:
        return {"m": {"runtimeStatus": "running"}}

    async def stop_module(self, name: str) -> None:
        self.stopped.append(name)


class _Device:
    """Just what the endpoints used here touch."""

    def __init__(self) -> None:
        self.agent = _Agent()

    def status(self) -> dict[str, Any]:
        return {"deviceId": "d", "modules": self.agent.status()}


def _request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_needs_the_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        device = _Device()
        api = ControlApi(device, token_path=tmp_path / TOKEN_FILE)  # type: ignore[arg-type]
        await api.start()
        try:
            token_file = tmp_path / TOKEN_FILE
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            token = token_file.read_text().strip()
            assert len(token) >= 40
            (tmp_path / "device.json").write_text(json.dumps({"controlPort": api.port}))
            for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {token}"},
                            {"Authorization": f"Bearer {token[:-1]}"}):
                for method, path in (("GET", "/status"), ("POST", "/modules/m/stop")):
                    status, body = await asyncio.to_thread(_request, api.port, method, path, headers)
                    assert status == 401 and "control.token" in body["message"], (headers, path, body)
            assert device.agent.stopped == []
            status, body = await asyncio.to_thread(_request, api.port, "GET", "/status",
                                                   {"Authorization": f"Bearer {token}"})
            assert (status, body["deviceId"]) == (200, "d")
            client = await asyncio.to_thread(ControlClient, tmp_path)
            assert (await asyncio.to_thread(client.status))["modules"] == {"m": {"runtimeStatus": "running"}}
            await asyncio.to_thread(client.module_action, "m", "stop")
            assert device.agent.stopped == ["m"]
        finally:
            await api.stop()
        assert not (tmp_path / TOKEN_FILE).exists()  # removed at stop

    asyncio.run(scenario())


def test_a_token_nobody_wrote_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "device.json").write_text(json.dumps({"controlPort": 1}))
    with pytest.raises(DeviceError) as info:
        ControlClient(tmp_path)
    assert "control token is missing" in info.value.message
