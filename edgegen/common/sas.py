"""Shared access signatures as IoT Hub issues and checks them (pure: no clock read unless asked).

Token: ``SharedAccessSignature sr={quote(resource)}&sig={quote(b64 HMAC-SHA256(b64decode(key), sr + "\\n" + se))}
&se={expiry}[&skn={policy}]``. Devices and modules sign ``{host}/devices/{d}[/modules/{m}]``; service policies
sign ``{host}`` and add ``skn``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus

from edgegen.errors import EdgegenError

__all__ = [
    "SasError",
    "SasToken",
    "generate_key",
    "generate_sas_token",
    "mask_secrets",
    "parse_connection_string",
    "parse_sas_token",
    "sign",
    "verify_sas_token",
]


class SasError(EdgegenError):
    """A token that is malformed, expired, for another resource, or signed with another key."""


@dataclass(frozen=True)
class SasToken:
    resource: str  # unquoted, e.g. "127.0.0.1/devices/dev1/modules/m1"
    signature: str  # base64, unquoted
    expiry: int
    key_name: str | None = None


def generate_key(nbytes: int = 32) -> str:
    """A new random base64 key, as IoT Hub generates for devices, modules and policies."""
    return base64.b64encode(secrets.token_bytes(nbytes)).decode()


def sign(key_b64: str, message: str) -> str:
    try:
        key = base64.b64decode(key_b64, validate=True)
    except ValueError as exc:
        raise SasError("the shared access key is not valid base64", hint="copy the key again") from exc
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def generate_sas_token(
    resource: str, key_b64: str, *, ttl: int = 3600, key_name: str | None = None, now: float | None = None,
    quote_resource_plus: bool = False,
) -> str:
    expiry = int((time.time() if now is None else now) + ttl)
    sr = quote_plus(resource) if quote_resource_plus else quote(resource, safe="")
    sig = sign(key_b64, f"{sr}\n{expiry}")
    token = f"SharedAccessSignature sr={sr}&sig={quote(sig, safe='')}&se={expiry}"
    if key_name:
        token += f"&skn={key_name}"
    return token


def parse_sas_token(token: str) -> tuple[SasToken, str]:
    """Parse a token; also return the ``sr`` exactly as sent (it is what was signed)."""
    prefix = "SharedAccessSignature "
    if not token.startswith(prefix):
        raise SasError(
            "not a SharedAccessSignature token", hint="the password must start with 'SharedAccessSignature '"
        )
    raw: dict[str, str] = {}
    for part in token[len(prefix):].split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            raise SasError(f"malformed SAS token field {part!r}")
        raw[name.strip()] = value
    missing = [f for f in ("sr", "sig", "se") if f not in raw]
    if missing:
        raise SasError(f"SAS token is missing {', '.join(missing)}")
    try:
        expiry = int(raw["se"])
    except ValueError as exc:
        raise SasError(f"SAS token expiry {raw['se']!r} is not an integer") from exc
    decoded = dict(parse_qsl(f"sr={raw['sr']}&sig={raw['sig']}", keep_blank_values=True))
    return SasToken(decoded["sr"], decoded["sig"], expiry, raw.get("skn")), raw["sr"]


def verify_sas_token(
    token: str,
    key_b64: str,
    *,
    resource: str | None = None,
    key_name: str | None = None,
    now: float | None = None,
) -> SasToken:
    """Check signature, expiry and (optionally) resource and policy name; raise SasError when wrong."""
    parsed, sr_as_sent = parse_sas_token(token)
    current = time.time() if now is None else now
    if parsed.expiry <= current:
        raise SasError("SAS token has expired", hint="generate a new token (tokens live 3600 s by default)")
    if resource is not None and parsed.resource.rstrip("/").lower() != resource.rstrip("/").lower():
        raise SasError(f"SAS token is for {parsed.resource!r}, not {resource!r}")
    if key_name is not None and parsed.key_name != key_name:
        raise SasError(f"SAS token names policy {parsed.key_name!r}, expected {key_name!r}")
    expected = sign(key_b64, f"{sr_as_sent}\n{parsed.expiry}")
    if not hmac.compare_digest(expected, parsed.signature):
        raise SasError("SAS token signature does not match the key", hint="check the shared access key")
    return parsed


def parse_connection_string(text: str) -> dict[str, str]:
    """``HostName=…;DeviceId=…;SharedAccessKey=…`` into a dict (keys as written)."""
    out: dict[str, str] = {}
    for part in text.strip().split(";"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep:
            raise SasError(f"malformed connection string field {mask_secrets(part)!r}",
                           hint="expected Name=value;Name=value")
        out[name] = value
    return out


MASK = "****"
_SECRET_VALUES = re.compile(r"((?:SharedAccessKey|SharedAccessSignature|sig|password|Password)=)[^;&\s\"',]+")


def mask_secrets(text: str) -> str:
    """``text`` with the values of ``SharedAccessKey=``, ``sig=`` (a SAS token's signature) and ``password=``
    replaced by ``****``: what connection strings and tokens look like in a log line or a message."""
    return _SECRET_VALUES.sub(lambda m: m.group(1) + MASK, text)
