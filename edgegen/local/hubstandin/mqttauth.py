"""Who may connect to the stand-in's MQTT side, and with which rights.

- A device or module with a SAS token signed with its own key (``{host}/devices/{d}[/modules/{m}]``, no ``skn``),
  as before.
- A device or module with a token from a shared access policy (``skn`` names it, signed with the policy's key,
  same resource): IoT Hub accepts these from protocol gateways and custom token services when the policy has
  ``DeviceConnect``. The identity must still exist and be enabled.
- A monitor of the live feed (``{FEED_DEVICE}/{session}``): a policy's token, whose policy needs ``ServiceConnect``
  (IoT Hub's right for reading the device-to-cloud stream). A token without ``skn`` (monitors of older versions)
  is tried against every policy's keys; the policy whose key signed it must have ServiceConnect.

A refused right answers CONNACK 5 (not authorized), as IoT Hub does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from edgegen.common.sas import SasError, parse_sas_token, verify_sas_token
from edgegen.local.hubstandin.errors import Unauthorized
from edgegen.local.hubstandin.feed import FEED_DEVICE
from edgegen.local.hubstandin.rights import DEVICE_CONNECT, SERVICE_CONNECT, policy_rights, require_right
from edgegen.local.mqtt.auth import BAD_CREDENTIALS, NOT_AUTHORIZED, Authenticated, AuthError, SasAuthenticator
from edgegen.local.mqtt.topics import Identity

__all__ = ["HubMqttAuthenticator"]


class HubMqttAuthenticator(SasAuthenticator):
    """``keys(identity)``: an enabled identity's own keys (None when unknown or disabled); ``policies``: the hub's
    shared access policies by name (read on every CONNECT, so changes apply at once)."""

    def __init__(self, keys: Callable[[Identity], Sequence[str] | None],
                 policies: Mapping[str, Mapping[str, str]], host: str,
                 now: Callable[[], float] | None = None) -> None:
        super().__init__(keys, host=host, allow_devices=True, allow_modules=True, now=now)
        self._identity_keys = keys
        self._policies = policies

    def verify_token(self, identity: Identity, token: str, host: str | None = None) -> Authenticated:
        try:
            parsed, _ = parse_sas_token(token)
        except SasError as exc:
            raise AuthError(f"{identity}: {exc.message}", BAD_CREDENTIALS, hint=exc.hint) from exc
        if identity.device_id == FEED_DEVICE:
            return self._policy_token(identity, token, parsed.key_name, SERVICE_CONNECT, host,
                                      "reading the device-to-cloud stream")
        if parsed.key_name is None:
            return super().verify_token(identity, token, host)
        if not self._identity_keys(identity):
            raise AuthError(f"{identity}: unknown or disabled identity", NOT_AUTHORIZED,
                            hint="create (or enable) the device or module first")
        return self._policy_token(identity, token, parsed.key_name, DEVICE_CONNECT, host,
                                  f"connecting as {identity}")

    def _policy_token(self, identity: Identity, token: str, key_name: str | None, right: str, host: str | None,
                      what: str) -> Authenticated:
        resource = identity.resource(host or self._host or "")
        names = [key_name] if key_name is not None else list(self._policies)
        last = f"unknown shared access policy {key_name!r}" if key_name is not None else "no policy signed it"
        now = self._now() if self._now else None
        for name in names:
            policy = self._policies.get(name)
            if policy is None:
                continue
            for key in (policy.get("primaryKey"), policy.get("secondaryKey")):
                if not key:
                    continue
                try:
                    parsed = verify_sas_token(token, key, resource=resource, now=now)
                except SasError as exc:
                    last = exc.message
                    if "expired" in last:
                        raise AuthError(f"{identity}: {last}", NOT_AUTHORIZED, hint=exc.hint) from exc
                    continue
                try:
                    require_right([(name, policy_rights(name, policy))], right, what)
                except Unauthorized as exc:
                    raise AuthError(exc.message, NOT_AUTHORIZED, hint=exc.hint) from exc
                return Authenticated(identity, float(parsed.expiry))
        raise AuthError(f"{identity}: {last}", NOT_AUTHORIZED,
                        hint="sign with a shared access policy's key (the hub's connection string)")
