"""The direct methods ``$edgeAgent`` answers, as edgeAgent's RequestManager answers them (pure dispatch).

- ``ping`` → 200, no payload.
- ``RestartModule`` with ``{"schemaVersion": "1.0", "id": "<module>"}`` → 200, no payload, once the module was
  stopped and started again (``edgeHub`` restarts the local edge hub). A payload without ``id`` or
  ``schemaVersion`` → 400; a module that is not in the deployment → 500
  ``{"message": "Module x not found in the current environment"}`` (edgeAgent's InvalidOperationException).
- Any other name → 400 ``{"message": "Command 'x' not found. The supported commands are - ping,RestartModule"}``.

Method names are matched case-insensitively, as edgeAgent does. edgeAgent's other commands (GetModuleLogs,
UploadModuleLogs, UploadSupportBundle, GetTaskStatus) are not implemented here and answer like unknown ones.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

__all__ = ["AGENT_MODULE", "SUPPORTED", "AgentOperations", "handle_agent_method"]

log = logging.getLogger(__name__)

AGENT_MODULE = "$edgeAgent"
SUPPORTED = ("ping", "RestartModule")


class AgentOperations(Protocol):
    """What the device offers the agent's methods."""

    def module_names(self) -> set[str]: ...

    async def restart_module(self, name: str) -> None: ...


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _restart_request(payload: Any) -> str:
    if payload is None:
        raise _Refused(400, "Request payload not found")
    if not isinstance(payload, dict):
        raise _Refused(400, "Error parsing command payload because of error - the payload must be a JSON object")
    for key in ("schemaVersion", "id"):
        value = payload.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _Refused(400, f"Error parsing command payload because of error - The value cannot be null or "
                                f"whitespace.\r\nParameter name: {'id' if key == 'id' else 'schemaVersion'}")
    if payload["schemaVersion"].split(".")[0] != "1":
        log.warning("RestartModule schema version %s is not 1.x; handled as 1.0", payload["schemaVersion"])
    return str(payload["id"])


async def handle_agent_method(ops: AgentOperations, name: str, payload: Any) -> tuple[int, Any]:
    """(status, payload) for a direct method called on ``$edgeAgent``."""
    try:
        command = next((c for c in SUPPORTED if c.lower() == name.lower()), None)
        if command is None:
            raise _Refused(400, f"Command '{name}' not found. The supported commands are - {','.join(SUPPORTED)}")
        if command == "ping":
            return 200, None
        module = _restart_request(payload)
        if module not in ops.module_names():
            raise _Refused(500, f"Module {module} not found in the current environment")
        log.info("Restarting %s...", module)
        await ops.restart_module(module)
        log.info("Restarted %s", module)
        return 200, None
    except _Refused as exc:
        return exc.status, {"message": exc.message}
    except Exception as exc:  # what edgeAgent answers for any other failure
        log.warning("$edgeAgent method %s failed: %s", name, exc)
        return 500, {"message": str(exc)}
