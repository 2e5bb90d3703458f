"""Who may call the stand-in: service SAS tokens (REST), device-scoped SAS tokens (REST, an edge device
managing its own module identities) and device/module SAS tokens (MQTT).

Each authenticator has one ``verify`` that returns the caller or raises ``Unauthorized``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edgegen.common.sas import SasError, parse_sas_token, verify_sas_token
from edgegen.local.hubstandin.errors import NotFound, Unauthorized
from edgegen.local.hubstandin.rights import policy_rights

__all__ = ["DeviceAuthenticator", "DeviceScopeAuthenticator", "ServiceAuthenticator", "ServiceCaller"]


@dataclass(frozen=True)
class ServiceCaller:
    policy: str
    expiry: int
    rights: frozenset[str] = frozenset()


class ServiceAuthenticator:
    """Checks ``Authorization: SharedAccessSignature sr={host}&sig=…&se=…&skn={policy}`` against a policy's keys.

    ``hosts``: the audiences a token may name — the hub's address with and without its HTTPS port (IoT Hub's
    host name has no port; tools that copy ``HostName`` from a connection string that carries one sign with it).
    """

    def __init__(self, hosts: tuple[str, ...], policies: Mapping[str, Mapping[str, str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.hosts = hosts
        self.policies = policies
        self.clock = clock

    def verify(self, header: str | None) -> ServiceCaller:
        if not header:
            raise Unauthorized("missing Authorization header", hint="send a SharedAccessSignature token")
        try:
            token, _ = parse_sas_token(header.strip())
        except SasError as exc:
            raise Unauthorized(f"malformed SAS token: {exc.message}") from exc
        policy = self.policies.get(token.key_name or "")
        if policy is None:
            raise Unauthorized(f"unknown shared access policy {token.key_name!r}",
                               hint="use the connection string printed by 'edgegen hub serve'")
        errors = []
        for key in (policy.get("primaryKey"), policy.get("secondaryKey")):
            if not key:
                continue
            for host in self.hosts:
                try:
                    verify_sas_token(header.strip(), key, resource=host, key_name=token.key_name,
                                     now=self.clock())
                    return ServiceCaller(token.key_name or "", token.expiry,
                                         policy_rights(token.key_name or "", policy))
                except SasError as exc:
                    errors.append(exc.message)
                    if "expired" in exc.message:
                        raise Unauthorized(f"SAS token rejected: {exc.message}") from exc
        best = next((e for e in errors if "is for" not in e), errors[0] if errors else "no key")
        raise Unauthorized(f"SAS token rejected: {best}")


class DeviceScopeAuthenticator:
    """Checks a device-scoped REST token: ``sr={host}/devices/{deviceId}``, no ``skn``, signed with that (edge)
    device's own key — what edgeAgent uses to create and read its device's module identities.

    ``hosts`` are the names a token may carry (the hub's address, with and without its HTTPS port).
    """

    def __init__(self, hosts: tuple[str, ...], keys_for: Callable[[str], list[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.hosts = hosts
        self.keys_for = keys_for
        self.clock = clock

    def verify(self, header: str, device_id: str) -> None:
        try:
            keys = self.keys_for(device_id)
        except NotFound as exc:
            raise Unauthorized(f"device-scoped token for unknown device {device_id!r}") from exc
        last = "no key"
        for key in keys:
            for host in self.hosts:
                try:
                    verify_sas_token(header.strip(), key, resource=f"{host}/devices/{device_id}", now=self.clock())
                    return
                except SasError as exc:
                    last = exc.message
                    if "expired" in last:
                        raise Unauthorized(f"SAS token rejected: {last}") from exc
        raise Unauthorized(f"device-scoped SAS token rejected for device {device_id!r}: {last}",
                           hint="sign {host}/devices/{deviceId} with that device's own key")


class DeviceAuthenticator:
    """Checks a device's or module's SAS token (MQTT password) against that identity's keys."""

    def __init__(self, host_name: str, keys_for: Callable[[str, str | None], list[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.host_name = host_name
        self.keys_for = keys_for
        self.clock = clock

    def verify(self, device_id: str, module_id: str | None, password: str) -> None:
        try:
            keys = self.keys_for(device_id, module_id)
        except NotFound as exc:
            raise Unauthorized(exc.message) from exc
        base = f"{self.host_name}/devices/{device_id}"
        resources = [f"{base}/modules/{module_id}"] if module_id else [base]
        last = "no key"
        for key in keys:
            for resource in resources:
                try:
                    verify_sas_token(password, key, resource=resource, now=self.clock())
                    return
                except SasError as exc:
                    last = exc.message
                    if "expired" in last:
                        raise Unauthorized(f"SAS token rejected: {last}") from exc
        raise Unauthorized(f"SAS token rejected for {device_id}{'/' + module_id if module_id else ''}: {last}")
