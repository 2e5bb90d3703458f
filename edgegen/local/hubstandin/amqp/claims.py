"""Claims-based security for the AMQP endpoint: SAS tokens put on ``$cbs`` (or given as a SASL PLAIN password)
become claims of the connection; each link and operation asks ``ConnectionClaims.require``.

A token is accepted when it is signed with a key of the shared access policy it names (``skn``) and its resource
(``sr``) is one of the hub's host names (``127.0.0.5``, ``127.0.0.5:8443``) or its Event Hub-compatible endpoint
(``sb://127.0.0.5/{name}``, any scheme), or a path below them. Device tokens (no ``skn``) are refused here: the
AMQP endpoint serves the service side.

Two signing conventions, as in Azure: IoT Hub signs with the base64-*decoded* policy key; the Event
Hub-compatible endpoint is an Event Hub and, like all of Service Bus, signs with the key's UTF-8 text (what
``azure-eventhub`` and ``uamqp``'s ``from_shared_access_key`` do). A token for the Event Hub scope is checked
the Event Hubs way, any other the IoT Hub way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from edgegen.common.sas import SasError, parse_sas_token, verify_sas_token
from edgegen.local.hubstandin.errors import Unauthorized
from edgegen.local.hubstandin.rights import policy_rights, require_right

__all__ = ["Claim", "ClaimsVerifier", "ConnectionClaims"]


@dataclass(frozen=True)
class Claim:
    policy: str
    rights: frozenset[str]
    expiry: int
    resource: str


def _scope(resource: str) -> str:
    text = resource.strip().lower()
    for scheme in ("sb://", "amqps://", "amqp://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme):]
            break
    return text.rstrip("/")


class ClaimsVerifier:
    def __init__(self, scopes: tuple[str, ...], policies: Mapping[str, Mapping[str, str]],
                 clock: Callable[[], float] = time.time, event_hub_scopes: tuple[str, ...] = ()) -> None:
        self.event_hub_scopes = tuple(_scope(s) for s in event_hub_scopes)
        self.scopes = tuple(_scope(s) for s in scopes) + self.event_hub_scopes
        self.policies = policies
        self.clock = clock

    def verify(self, token: str) -> Claim:
        try:
            parsed, _ = parse_sas_token(token.strip())
        except SasError as exc:
            raise Unauthorized(f"malformed SAS token: {exc.message}") from None
        if not parsed.key_name:
            raise Unauthorized("a device token cannot use the service endpoint",
                               hint="sign with a shared access policy (skn), e.g. the hub's connection string")
        policy = self.policies.get(parsed.key_name)
        if policy is None:
            raise Unauthorized(f"unknown shared access policy {parsed.key_name!r}")
        scope = _scope(parsed.resource)
        if not any(scope == s or scope.startswith(s + "/") for s in self.scopes):
            raise Unauthorized(f"SAS token is for {parsed.resource!r}, not this hub",
                               hint=f"sign one of: {', '.join(self.scopes)}")
        event_hub = any(scope == s or scope.startswith(s + "/") for s in self.event_hub_scopes)
        last = "no key"
        for key in (policy.get("primaryKey"), policy.get("secondaryKey")):
            if not key:
                continue
            try:
                if event_hub:
                    _verify_text_key(token.strip(), key, self.clock())
                else:
                    verify_sas_token(token.strip(), key, key_name=parsed.key_name, now=self.clock())
            except SasError as exc:
                last = exc.message
                continue
            return Claim(parsed.key_name, policy_rights(parsed.key_name, policy), parsed.expiry, scope)
        raise Unauthorized(f"SAS token rejected: {last}")


def _verify_text_key(token: str, key: str, now: float) -> None:
    """Service Bus / Event Hubs signing: HMAC-SHA256 keyed with the key's UTF-8 text."""
    parsed, sr_as_sent = parse_sas_token(token)
    if parsed.expiry <= now:
        raise SasError("SAS token has expired", hint="generate a new token")
    expected = base64.b64encode(hmac.new(key.encode(), f"{sr_as_sent}\n{parsed.expiry}".encode(),
                                         hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, parsed.signature):
        raise SasError("SAS token signature does not match the key", hint="check the shared access key")


@dataclass
class ConnectionClaims:
    """The claims one connection holds, by audience (a renewed token replaces the old one)."""

    clock: Callable[[], float] = time.time
    by_audience: dict[str, Claim] = field(default_factory=dict)

    def add(self, audience: str, claim: Claim) -> None:
        self.by_audience[audience] = claim
        if len(self.by_audience) > 64:  # a client putting tokens for ever-new audiences
            oldest = min(self.by_audience, key=lambda a: self.by_audience[a].expiry)
            del self.by_audience[oldest]

    def require(self, right: str, what: str) -> str:
        now = self.clock()
        live = [(c.policy, c.rights) for c in self.by_audience.values() if c.expiry > now]
        if not live and self.by_audience:
            raise Unauthorized(f"{what}: the connection's SAS token has expired", hint="put a new token on $cbs")
        return require_right(live, right, what)
