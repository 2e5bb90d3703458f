"""What a shared access policy may do, and the one check every service-side operation goes through.

IoT Hub's rights: ``RegistryRead``, ``RegistryWrite``, ``ServiceConnect`` (read the device-to-cloud stream, send
cloud-to-device messages, read feedback, invoke methods), ``DeviceConnect``. A policy document may carry its own
``rights`` (a list, or IoT Hub's comma-separated string); otherwise the built-in policies have their portal
defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgegen.local.hubstandin.errors import Unauthorized

__all__ = ["ALL_RIGHTS", "DEFAULT_POLICY_RIGHTS", "policy_rights", "require_right"]

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
