"""SasAuthenticator: the checks IoT Hub makes on a CONNECT."""

from __future__ import annotations

import time

import pytest

from edgegen.common.sas import generate_key, generate_sas_token
from edgegen.local.mqtt.auth import BAD_CREDENTIALS, IDENTIFIER_REJECTED, NOT_AUTHORIZED, AuthError, SasAuthenticator
from edgegen.local.mqtt.topics import Identity

HOST = "hub.example"
MOD = Identity("d1", "m1")
DEV = Identity("d1")
KEYS = {MOD: generate_key(), DEV: generate_key()}
SECONDARY = generate_key()


def lookup(identity: Identity) -> list[str] | None:
    key = KEYS.get(identity)
    return [key, SECONDARY] if key else None


def user(identity: Identity) -> str:
    return f"{HOST}/{identity.client_id}/?api-version=2019-10-01&DeviceClientType=x"


def tok(identity: Identity, key: str | None = None, ttl: int = 60) -> bytes:
    return generate_sas_token(identity.resource(HOST), key or KEYS[identity], ttl=ttl).encode()


def test_accepts_primary_and_secondary_keys_and_reports_expiry() -> None:
    auth = SasAuthenticator(lookup, host=HOST)
    result = auth.authenticate("d1/m1", user(MOD), tok(MOD))
    assert result.identity == MOD
    assert result.expiry is not None and abs(result.expiry - (time.time() + 60)) < 5
    assert auth.authenticate("d1/m1", user(MOD), tok(MOD, SECONDARY)).identity == MOD
    # host taken from the user name when none is configured
    assert SasAuthenticator(lookup).authenticate("d1/m1", user(MOD), tok(MOD)).identity == MOD


@pytest.mark.parametrize(
    ("client_id", "username", "password", "code"),
    [
        ("d1/m1", user(MOD), tok(MOD, generate_key()), NOT_AUTHORIZED),
        ("d1/m1", user(MOD), tok(MOD, ttl=-1), NOT_AUTHORIZED),
        ("d1/m2", user(Identity("d1", "m2")), tok(MOD), NOT_AUTHORIZED),  # unknown module
        ("d1/m1", user(MOD), None, BAD_CREDENTIALS),
        ("d1/m1", None, tok(MOD), BAD_CREDENTIALS),
        ("d1/m1", "other.host/d1/m1/?api-version=1", tok(MOD), BAD_CREDENTIALS),
        ("d1/m1", user(DEV), tok(MOD), BAD_CREDENTIALS),
        ("d1/m1", user(MOD), b"\xff\xfe", BAD_CREDENTIALS),
        ("d1", user(DEV), tok(DEV), IDENTIFIER_REJECTED),  # devices are not allowed by default
        ("d1/", user(MOD), tok(MOD), IDENTIFIER_REJECTED),
        ("d1/" + "m" * 129, user(MOD), tok(MOD), IDENTIFIER_REJECTED),  # IoT Hub's id rules (edgegen.common.ids)
        ("d1/caf\u00e9", user(MOD), tok(MOD), IDENTIFIER_REJECTED),
        ("d 1/m1", user(MOD), tok(MOD), IDENTIFIER_REJECTED),
    ],
)
def test_refusals(client_id: str, username: str | None, password: bytes | None, code: int) -> None:
    with pytest.raises(AuthError) as info:
        SasAuthenticator(lookup, host=HOST).authenticate(client_id, username, password)
    assert info.value.return_code == code


def test_hub_mode_takes_devices_and_can_refuse_modules() -> None:
    auth = SasAuthenticator(lookup, host=HOST, allow_devices=True, allow_modules=False)
    assert auth.authenticate("d1", user(DEV), tok(DEV)).identity == DEV
    with pytest.raises(AuthError):
        auth.authenticate("d1/m1", user(MOD), tok(MOD))
    # a module token is for another resource than the device
    with pytest.raises(AuthError):
        auth.authenticate("d1", user(DEV), generate_sas_token(MOD.resource(HOST), KEYS[DEV]).encode())


def test_injected_clock_makes_tokens_expire() -> None:
    auth = SasAuthenticator(lookup, host=HOST, now=lambda: time.time() + 120)
    with pytest.raises(AuthError, match="expired"):
        auth.authenticate("d1/m1", user(MOD), tok(MOD, ttl=60))
