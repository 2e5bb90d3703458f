"""$edgeAgent's direct methods as edgeAgent's RequestManager answers them (dispatch only; the device-level and
hub-level tests drive the real thing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgegen.local.agentmethods import handle_agent_method
from edgegen.local.errors import DeviceError


class Modules:
    """The two operations the dispatcher needs, over a set of names; records restarts."""

    def __init__(self, *names: str, fail: str | None = None) -> None:
        self.names = set(names)
        self.restarted: list[str] = []
        self.fail = fail

    def module_names(self) -> set[str]:
        return self.names

    async def restart_module(self, name: str) -> None:
        if name == self.fail:
            raise DeviceError(f"module {name!r} is not running")
        self.restarted.append(name)


def call(ops: Modules, name: str, payload: Any) -> tuple[int, Any]:
    return asyncio.run(handle_agent_method(ops, name, payload))


@pytest.mark.parametrize("name", ["ping", "Ping", "PING"])
def test_ping_in_any_case(name: str) -> None:
    assert call(Modules(), name, {"ignored": True}) == (200, None)


def test_restart_module() -> None:
    ops = Modules("sensor", "edgeHub")
    assert call(ops, "restartmodule", {"schemaVersion": "1.0", "id": "sensor"}) == (200, None)
    assert call(ops, "RestartModule", {"schemaVersion": "1.2", "id": "edgeHub"}) == (200, None)  # minor: accepted
    assert ops.restarted == ["sensor", "edgeHub"]


@pytest.mark.parametrize(("payload", "status", "text"), [
    (None, 400, "Request payload not found"),
    ([], 400, "Error parsing command payload"),
    ({"id": "sensor"}, 400, "schemaVersion"),
    ({"schemaVersion": "1.0", "id": " "}, 400, "id"),
    ({"schemaVersion": "1.0", "id": "ghost"}, 500, "Module ghost not found in the current environment"),
    ({"schemaVersion": "1.0", "id": "stopped"}, 500, "module 'stopped' is not running"),
])
def test_restart_refusals(payload: Any, status: int, text: str) -> None:
    ops = Modules("sensor", "stopped", fail="stopped")
    got_status, body = call(ops, "RestartModule", payload)
    assert got_status == status and text in body["message"]
    assert ops.restarted == []


def test_unknown_commands_list_the_supported_ones() -> None:
    assert call(Modules(), "GetModuleLogs", {}) == (400, {
        "message": "Command 'GetModuleLogs' not found. The supported commands are - ping,RestartModule"})
