"""What a shared access policy may do, and the one check every service-side operation goes through.

IoT Hub's rights: ``RegistryRead``, ``RegistryWrite``, ``ServiceConnect`` (read the device-to-cloud stream, send
cloud-to-device messages, read feedback, invoke methods), ``DeviceConnect``. A policy document may carry its own
``rights`` (a list, or IoT Hub's comma-separated string); otherwise the built-in policies have their portal
defaults.

``REST_RIGHTS`` is the one table of what each REST operation needs, keyed by method and route (the route as the
HTTP layer registers it). From IoT Hub's documentation ("Control access to IoT Hub with shared access
signatures"): the identity registry needs RegistryRead to read and RegistryWrite to change; twins (tags, desired
properties, reported properties) and direct methods need ServiceConnect; queries of the registry need
RegistryRead ("it needs the registry read permission to query the identity registry"). Where the documentation
names no right — configurations, ``applyConfigurationContent`` and the statistics — the table treats them as the
registry they belong to (RBAC keeps them beside ``devices/read|write``): read needs RegistryRead, change needs
RegistryWrite; the connected-device count and the built-in endpoint's consumer groups (ARM's in Azure) are the
service side's (ServiceConnect).

The MQTT side asks the same module: a device connecting with a policy's token needs DeviceConnect
(``DEVICE_CONNECT``); a monitor on the live feed needs ServiceConnect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgegen.local.hubstandin.errors import Unauthorized

__all__ = [
    "ALL_RIGHTS",
    "DEFAULT_POLICY_RIGHTS",
    "DEVICE_CONNECT",
    "REGISTRY_READ",
    "REGISTRY_WRITE",
    "REST_RIGHTS",
    "SERVICE_CONNECT",
    "policy_rights",
    "require_right",
    "rest_right",
]

REGISTRY_READ = "RegistryRead"
REGISTRY_WRITE = "RegistryWrite"
SERVICE_CONNECT = "ServiceConnect"
DEVICE_CONNECT = "DeviceConnect"

ALL_RIGHTS = frozenset({"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"})
DEFAULT_POLICY_RIGHTS: dict[str, frozenset[str]] = {
    "iothubowner": ALL_RIGHTS,
    "service": frozenset({"ServiceConnect"}),
    "device": frozenset({"DeviceConnect"}),
    "registryRead": frozenset({"RegistryRead"}),
    "registryReadWrite": frozenset({"RegistryRead", "RegistryWrite"}),
}


def policy_rights(name: str, policy: Mapping[str, Any]) -> frozenset[str]:
    rights = policy.get("rights")
    if isinstance(rights, str):
        return frozenset(r.strip() for r in rights.split(",") if r.strip())
    if isinstance(rights, list | tuple | set | frozenset):
        return frozenset(str(r) for r in rights)
    return DEFAULT_POLICY_RIGHTS.get(name, frozenset())


def require_right(granted: Iterable[tuple[str, frozenset[str]]], right: str, what: str) -> str:
    """The first (policy, rights) pair that grants ``right``; else ``Unauthorized`` naming what was refused."""
    seen = []
    for policy, rights in granted:
        if right in rights:
            return policy
        seen.append(policy)
    held = f" (the token's policy {', '.join(sorted(set(seen)))} lacks it)" if seen else " (no valid token yet)"
    raise Unauthorized(f"{what} needs the {right} right{held}",
                       hint="use a policy that has it, e.g. iothubowner or service")


_DEVICE = "/devices/{id}"
_MODULE = "/devices/{id}/modules/{mid}"
_TWIN = "/twins/{id}"
_MODULE_TWIN = "/twins/{id}/modules/{mid}"

#: (method, route) -> the right the operation needs. Every route the REST layer serves has an entry (a test checks).
REST_RIGHTS: dict[tuple[str, str], str] = {
    ("GET", "/devices"): REGISTRY_READ,
    ("GET", "/devices/"): REGISTRY_READ,
    ("POST", "/devices"): REGISTRY_WRITE,  # bulk create/update/delete
    ("POST", "/devices/query"): REGISTRY_READ,
    ("GET", _DEVICE): REGISTRY_READ,
    ("PUT", _DEVICE): REGISTRY_WRITE,
    ("DELETE", _DEVICE): REGISTRY_WRITE,
    ("POST", _DEVICE + "/applyConfigurationContent"): REGISTRY_WRITE,
    ("GET", _DEVICE + "/modules"): REGISTRY_READ,
    ("GET", _MODULE): REGISTRY_READ,
    ("PUT", _MODULE): REGISTRY_WRITE,
    ("DELETE", _MODULE): REGISTRY_WRITE,
    **{(method, path): SERVICE_CONNECT for path in (_TWIN, _MODULE_TWIN) for method in ("GET", "PATCH", "PUT")},
    ("POST", _TWIN + "/methods"): SERVICE_CONNECT,
    ("POST", _MODULE_TWIN + "/methods"): SERVICE_CONNECT,
    ("GET", "/configurations"): REGISTRY_READ,
    ("POST", "/configurations/testQueries"): REGISTRY_READ,
    ("GET", "/configurations/{id}"): REGISTRY_READ,
    ("PUT", "/configurations/{id}"): REGISTRY_WRITE,
    ("DELETE", "/configurations/{id}"): REGISTRY_WRITE,
    ("GET", "/statistics/devices"): REGISTRY_READ,
    ("GET", "/statistics/service"): SERVICE_CONNECT,
    # consumer groups of the built-in endpoint: managed through ARM in Azure (no SAS right names them); here they
    # belong to the service-facing endpoint they read from
    ("GET", "/eventHubEndpoints/events/ConsumerGroups"): SERVICE_CONNECT,
    ("PUT", "/eventHubEndpoints/events/ConsumerGroups/{name}"): SERVICE_CONNECT,
    ("DELETE", "/eventHubEndpoints/events/ConsumerGroups/{name}"): SERVICE_CONNECT,
    # the stand-in's own status (connections, capacity, store sizes, monitors): like the service statistics
    ("GET", "/edgegen/status"): SERVICE_CONNECT,
}


def rest_right(method: str, route: str) -> str | None:
    """The right ``method`` on ``route`` needs; None for a route the table does not know (refused: fail closed)."""
    return REST_RIGHTS.get((method.upper(), route))
