"""Who may connect: an ``Authenticator`` turns a CONNECT's client id, user name and password into an Identity.

``SasAuthenticator`` checks the password as IoT Hub does: a SAS token for ``{host}/devices/{d}[/modules/{m}]``
signed with that identity's key (any of its keys, primary or secondary), not expired.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edgegen.common.sas import SasError, verify_sas_token
from edgegen.local.mqtt.errors import MqttError
from edgegen.local.mqtt.packets import ConnackCode
from edgegen.local.mqtt.topics import Identity, TopicError

__all__ = [
    "BAD_CREDENTIALS",
    "IDENTIFIER_REJECTED",
    "NOT_AUTHORIZED",
    "AuthError",
    "Authenticated",
    "Authenticator",
    "KeyLookup",
    "SasAuthenticator",
]

# the CONNACK return codes an authenticator refuses with
IDENTIFIER_REJECTED = ConnackCode.IDENTIFIER_REJECTED
BAD_CREDENTIALS = ConnackCode.BAD_CREDENTIALS
NOT_AUTHORIZED = ConnackCode.NOT_AUTHORIZED


class AuthError(MqttError):
    """A CONNECT that is refused; ``return_code`` is what the CONNACK carries."""

    def __init__(self, message: str, return_code: int = NOT_AUTHORIZED, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.return_code = return_code


@dataclass(frozen=True, slots=True)
class Authenticated:
    identity: Identity
    expiry: float | None = None  # epoch seconds when the credential stops being valid


class Authenticator(Protocol):
    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> Authenticated:
        """Return who connected, or raise AuthError."""
        ...


#: identity → its keys (base64), or None/empty when the identity is unknown.
KeyLookup = Callable[[Identity], "Sequence[str] | str | None"]


class SasAuthenticator:
    """SAS tokens in the password, checked against the identity's keys from ``keys``.

    ``host`` (the IoT Hub host name modules are configured with) is enforced when given; otherwise the host is
    taken from the user name ``{host}/{device}[/{module}]/?api-version=…``.
    ``allow_devices`` / ``allow_modules`` select hub mode (devices) and edge hub mode (modules).
    """

    def __init__(
        self, keys: KeyLookup, *, host: str | None = None, allow_devices: bool = False, allow_modules: bool = True,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._keys = keys
        self._host = host
        self._allow_devices = allow_devices
        self._allow_modules = allow_modules
        self._now = now

    def authenticate(self, client_id: str, username: str | None, password: bytes | None) -> Authenticated:
        try:
            identity = Identity.from_client_id(client_id)
        except TopicError as exc:
            raise AuthError(exc.message, IDENTIFIER_REJECTED) from exc
        if identity.module_id is None and not self._allow_devices:
            raise AuthError(f"{identity}: device connections are not accepted here", IDENTIFIER_REJECTED)
        if identity.module_id is not None and not self._allow_modules:
            raise AuthError(f"{identity}: module connections are not accepted here", IDENTIFIER_REJECTED)
        host = self._check_username(identity, username)
        if password is None:
            raise AuthError(f"{identity}: no password (a SAS token is required)", BAD_CREDENTIALS)
        try:
            token = password.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AuthError(f"{identity}: password is not UTF-8", BAD_CREDENTIALS) from exc
        return self.verify_token(identity, token, host)

    def verify_token(self, identity: Identity, token: str, host: str | None = None) -> Authenticated:
        """A SAS token (an MQTT password or an HTTP ``Authorization`` header) for ``identity``; AuthError if not.

        ``host`` defaults to the one this authenticator enforces."""
        host = host or self._host
        if host is None:
            raise AuthError(f"{identity}: no host name to check the token's audience against", BAD_CREDENTIALS)
        found = self._keys(identity)
        keys = [found] if isinstance(found, str) else list(found or [])
        if not keys:
            raise AuthError(f"{identity}: unknown identity", NOT_AUTHORIZED, hint="create the device/module first")
        now = self._now() if self._now else None
        last: SasError | None = None
        for key in keys:
            try:
                parsed = verify_sas_token(token, key, resource=identity.resource(host), now=now)
            except SasError as exc:
                last = exc
                continue
            return Authenticated(identity, float(parsed.expiry))
        assert last is not None
        raise AuthError(f"{identity}: {last.message}", NOT_AUTHORIZED, hint=last.hint) from last

    def _check_username(self, identity: Identity, username: str | None) -> str:
        if not username:
            raise AuthError(f"{identity}: no user name", BAD_CREDENTIALS, hint="{host}/{client id}/?api-version=…")
        path = username.partition("?")[0].rstrip("/")
        host, sep, who = path.partition("/")
        if not sep or who != identity.client_id:
            raise AuthError(
                f"user name {username!r} does not match client id {identity.client_id!r}", BAD_CREDENTIALS
            )
        if self._host is not None and host.lower() != self._host.lower():
            raise AuthError(f"user name names host {host!r}, this hub is {self._host!r}", BAD_CREDENTIALS)
        return self._host or host
