"""Container registry credentials from ``.env`` / the environment, as iotedgedev reads them, and password masking.

``CONTAINER_REGISTRY_SERVER``, ``CONTAINER_REGISTRY_USERNAME``, ``CONTAINER_REGISTRY_PASSWORD`` describe the main
registry; any suffix (``CONTAINER_REGISTRY_SERVER_2``, ``..._USERNAME_2``, ``..._PASSWORD_2``, or ``_ACR``…) adds
another one. Pure: an environment mapping in, :class:`Registry` values out.

``registry_credentials_for_manifest`` gives the ``registryCredentials`` object of ``$edgeAgent`` for the registries
that the manifest's images use and that have a user name and password.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Masker",
    "Registry",
    "apply_registry_credentials",
    "find_registry",
    "image_registry",
    "registries_from_env",
    "registry_credentials_for_manifest",
]

_SERVER = "CONTAINER_REGISTRY_SERVER"
_USER = "CONTAINER_REGISTRY_USERNAME"
_PASSWORD = "CONTAINER_REGISTRY_PASSWORD"
MASK = "****"


@dataclass(frozen=True)
class Registry:
    """One registry; ``suffix`` is '' for the main one, '_2' for CONTAINER_REGISTRY_SERVER_2, and so on."""

    server: str
    username: str = ""
    password: str = field(default="", repr=False)
    suffix: str = ""

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)

    @property
    def host(self) -> str:
        return _normalize(self.server)

    @property
    def env_names(self) -> tuple[str, str, str]:
        return (_SERVER + self.suffix, _USER + self.suffix, _PASSWORD + self.suffix)

    def auth_config(self) -> dict[str, str] | None:
        """The Docker SDK ``auth_config`` for a push, or None for an anonymous one."""
        if not self.has_credentials:
            return None
        return {"username": self.username, "password": self.password, "serveraddress": self.server}


def _normalize(server: str) -> str:
    s = server.strip().lower()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return s.rstrip("/").split("/", 1)[0]


def registries_from_env(env: Mapping[str, str], source: str = ".env") -> list[Registry]:
    """All registries named in ``env`` (sorted: main registry first, then by suffix), as iotedgedev reads them.

    A user name or password without the matching ``CONTAINER_REGISTRY_SERVER<suffix>`` is kept with an empty
    server, exactly like iotedgedev's registry map: it never matches an image (pushes to it are anonymous, no
    ``registryCredentials`` entry comes from it) but its password is still known, so it is masked. This is the
    VS Code extension's layout (``CONTAINER_REGISTRY_USERNAME_myacr`` with the address written in the template).
    ``source`` is kept for callers that name the file in messages.
    """
    del source
    parts: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        for prefix, slot in ((_SERVER, "server"), (_USER, "username"), (_PASSWORD, "password")):
            if key.startswith(prefix):
                parts.setdefault(key[len(prefix) :], {})[slot] = (value or "").strip()
                break
    result = []
    for suffix in sorted(parts, key=lambda s: (s != "", s)):
        p = parts[suffix]
        if not (p.get("server") or p.get("username") or p.get("password")):
            continue
        result.append(Registry(p.get("server", ""), p.get("username", ""), p.get("password", ""), suffix))
    return result


def image_registry(image: str) -> str:
    """The registry host of an image reference (``docker.io`` when the name has no registry part)."""
    first = image.split("/", 1)[0] if "/" in image else ""
    if first and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return "docker.io"


def find_registry(image: str, registries: Iterable[Registry]) -> Registry | None:
    host = image_registry(image)
    for reg in registries:
        if reg.host and reg.host == host:
            return reg
    return None


def _credential_name(reg: Registry, taken: set[str]) -> str:
    host = reg.host.split(":", 1)[0]
    base = host.split(".", 1)[0] if not re.fullmatch(r"[\d.]+", host) else host.replace(".", "_")
    base = re.sub(r"[^A-Za-z0-9_-]", "_", base) or "registry"
    name = base
    if name in taken and reg.suffix:
        name = base + re.sub(r"[^A-Za-z0-9_-]", "_", reg.suffix)
    n = 2
    while name in taken:
        name = f"{base}_{n}"
        n += 1
    taken.add(name)
    return name


def registry_credentials_for_manifest(
    registries: Iterable[Registry], images: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """``registryCredentials`` for ``$edgeAgent``: ``{name: {username, password, address}}``.

    Only registries with a server, a user name and a password; when ``images`` is given, only those an image uses.
    Names are the registry host's first label (``myacr`` for ``myacr.azurecr.io``), unique, safe as twin keys.
    """
    used = {image_registry(i) for i in images} if images is not None else None
    out: dict[str, dict[str, str]] = {}
    taken: set[str] = set()
    for reg in registries:
        if not reg.host or not reg.has_credentials or (used is not None and reg.host not in used):
            continue
        out[_credential_name(reg, taken)] = {"username": reg.username, "password": reg.password, "address": reg.server}
    return out


def apply_registry_credentials(manifest: Mapping[str, Any], registries: Iterable[Registry]) -> dict[str, Any]:
    """A copy of a rendered manifest whose ``$edgeAgent`` ``runtime.settings.registryCredentials`` also lists every
    registry (with credentials) that a module image uses. Entries already in the template win: a registry whose
    address is already listed is not added again, and no existing name is overwritten.
    """
    out = copy.deepcopy(dict(manifest))
    agent = out.get("modulesContent", {}).get("$edgeAgent")
    desired = agent.get("properties.desired") if isinstance(agent, dict) else None
    if not isinstance(desired, dict):
        return out
    images = [
        m["settings"]["image"]
        for group in (desired.get("modules"), desired.get("systemModules"))
        if isinstance(group, dict)
        for m in group.values()
        if isinstance(m, dict) and isinstance(m.get("settings"), dict) and isinstance(m["settings"].get("image"), str)
    ]
    wanted = registry_credentials_for_manifest(registries, images)
    if not wanted:
        return out
    settings = desired.setdefault("runtime", {}).setdefault("settings", {})
    existing = settings.get("registryCredentials")
    creds: dict[str, Any] = dict(existing) if isinstance(existing, dict) else {}
    listed = {_normalize(str(v.get("address", ""))) for v in creds.values() if isinstance(v, dict)}
    for name, entry in wanted.items():
        if _normalize(entry["address"]) in listed:
            continue
        key, n = name, 2
        while key in creds:
            key, n = f"{name}_{n}", n + 1
        creds[key] = entry
    settings["registryCredentials"] = creds
    return out


class Masker:
    """Replaces every known secret in a text by ``****``; use it on every log line and error message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    @classmethod
    def for_registries(cls, registries: Iterable[Registry]) -> Masker:
        return cls(r.password for r in registries)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)  # longest first, so a prefix never leaves a tail

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text
