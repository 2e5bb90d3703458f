"""A deployment as the local device sees it, and where deployments come from.

``parse_deployment(modules_content)`` is pure: it reads ``$edgeAgent`` desired (modules, env, status,
restartPolicy, startupOrder), ``$edgeHub`` desired (routes, schema version, store-and-forward TTL) and every module
twin's desired properties, and raises ``DeviceError`` with a JSON path on bad input.

A ``DeploymentSource`` yields deployments: ``ManifestFile`` reads a manifest file and notices when it changes;
the IoT Hub stand-in can supply the ``$edgeAgent``/``$edgeHub`` twins instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgegen.common.ids import MAX_ID_LENGTH
from edgegen.errors import Location
from edgegen.local.errors import DeviceError
from edgegen.local.twins import desired_from_modules_content

__all__ = [
    "DEFAULT_STORE_TTL",
    "Deployment",
    "DeploymentSource",
    "DesiredModule",
    "ManifestFile",
    "RegistryCredential",
    "load_manifest",
    "parse_deployment",
]

DEFAULT_STORE_TTL = 7200
RESTART_POLICIES = ("never", "on-failure", "on-unhealthy", "always")
PULL_POLICIES = ("on-create", "never")
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_ENV_NAME = re.compile(r"^[^+#$\s.]+$")


@dataclass(frozen=True)
class DesiredModule:
    name: str
    image: str
    status: str = "running"
    restart_policy: str = "always"
    startup_order: int = 4294967295
    env: Mapping[str, str] = field(default_factory=dict)
    version: str = ""
    create_options: str = ""  # the createOptions JSON text (chunks createOptions01… joined), "" when absent
    image_pull_policy: str = "on-create"

    def fingerprint(self) -> str:
        """Changes when anything that needs a restart changes (status is handled apart)."""
        data = [self.image, sorted(self.env.items()), self.version, self.create_options, self.restart_policy,
                self.image_pull_policy]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]

    def create_options_dict(self) -> dict[str, Any]:
        """createOptions as an object (validated when the deployment was parsed)."""
        return dict(json.loads(self.create_options)) if self.create_options else {}


@dataclass(frozen=True)
class RegistryCredential:
    """One entry of ``$edgeAgent`` ``runtime.settings.registryCredentials``."""

    name: str
    address: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Deployment:
    modules: Mapping[str, DesiredModule]
    routes: Mapping[str, Any]
    hub_schema_version: str
    store_ttl_secs: int
    twins: Mapping[str, Mapping[str, Any]]  # module twin desired properties, by module (system modules too)
    modules_content: Mapping[str, Any] = field(default_factory=dict, compare=False)
    registry_credentials: tuple[RegistryCredential, ...] = ()


def _desired(mc: Mapping[str, Any], system: str, source: str) -> Mapping[str, Any]:
    content = mc.get(system)
    if not isinstance(content, Mapping) or not isinstance(content.get("properties.desired"), Mapping):
        raise DeviceError(
            f"the manifest has no {system} desired properties",
            location=Location(file=source, json_path=f"modulesContent.{system}.properties.desired"),
            hint="render the template first (edgegen genconfig) and pass the file under manifests/",
        )
    return content["properties.desired"]


def _module(name: str, spec: Any, path: str, source: str) -> DesiredModule:
    def err(msg: str, sub: str = "", hint: str | None = None) -> DeviceError:
        return DeviceError(msg, location=Location(file=source, json_path=path + sub), hint=hint)

    if not _NAME.fullmatch(name) or len(name) > MAX_ID_LENGTH:
        raise err(f"module name {name[:40]!r} is not allowed",
                  hint=f"module names match ^[a-zA-Z0-9_-]+$ and are at most {MAX_ID_LENGTH} characters (IoT Hub's "
                  "module id limit)")
    if not isinstance(spec, Mapping):
        raise err("a module must be an object")
    settings = spec.get("settings")
    if not isinstance(settings, Mapping) or not isinstance(settings.get("image"), str):
        raise err("module has no settings.image", ".settings.image")
    image = settings["image"]
    if "${" in image:
        raise err(f"image {image!r} still holds a placeholder", ".settings.image",
                  hint="render the template with edgegen genconfig and run the generated manifest")
    status = spec.get("status", "running")
    if status not in ("running", "stopped"):
        raise err(f"status {status!r} is not running or stopped", ".status")
    policy = spec.get("restartPolicy", "always")
    if policy not in RESTART_POLICIES:
        raise err(f"restartPolicy {policy!r} is unknown", ".restartPolicy", hint=", ".join(RESTART_POLICIES))
    order = spec.get("startupOrder", 4294967295)
    if not isinstance(order, int) or isinstance(order, bool) or not 0 <= order <= 4294967295:
        raise err(f"startupOrder {order!r} is not an integer 0-4294967295", ".startupOrder")
    env: dict[str, str] = {}
    for key, value in (spec.get("env") or {}).items():
        if not _ENV_NAME.match(key):
            raise err(f"environment variable name {key!r} is not allowed", f".env.{key}")
        if not isinstance(value, Mapping) or "value" not in value:
            raise err(f"env {key!r} must be {{\"value\": ...}}", f".env.{key}")
        v = value["value"]
        env[key] = v if isinstance(v, str) else json.dumps(v)
    chunks = [settings.get("createOptions", "")] + [
        settings.get(f"createOptions{i:02d}", "") for i in range(1, 100)
    ]
    create = "".join(c if isinstance(c, str) else json.dumps(c, separators=(",", ":")) for c in chunks if c)
    if create:
        try:
            parsed = json.loads(create)
        except ValueError as exc:
            raise err(f"createOptions is not valid JSON: {exc}", ".settings.createOptions",
                      hint="createOptions is the JSON of Docker's container create body, e.g. "
                      '{"HostConfig": {"Memory": 268435456}}') from None
        if not isinstance(parsed, Mapping):
            raise err("createOptions must be a JSON object", ".settings.createOptions")
    pull = spec.get("imagePullPolicy", "on-create")
    if pull not in PULL_POLICIES:
        raise err(f"imagePullPolicy {pull!r} is unknown", ".imagePullPolicy", hint=" or ".join(PULL_POLICIES))
    return DesiredModule(name, image, status, policy, order, env, str(spec.get("version", "")), create, pull)


def _registry_credentials(agent: Mapping[str, Any], source: str) -> tuple[RegistryCredential, ...]:
    path = "modulesContent.$edgeAgent.properties.desired.runtime.settings.registryCredentials"
    runtime = agent.get("runtime")
    settings = runtime.get("settings") if isinstance(runtime, Mapping) else None
    creds = settings.get("registryCredentials") if isinstance(settings, Mapping) else None
    if not creds:
        return ()
    if not isinstance(creds, Mapping):
        raise DeviceError("registryCredentials must be an object", location=Location(file=source, json_path=path))
    out = []
    for name, entry in creds.items():
        fields = ("address", "username", "password")
        if not isinstance(entry, Mapping) or not all(isinstance(entry.get(f), str) for f in fields):
            raise DeviceError(f"registry credential {name!r} needs address, username and password (strings)",
                              location=Location(file=source, json_path=f"{path}.{name}"),
                              hint="edgegen genconfig fills them from CONTAINER_REGISTRY_* in .env")
        out.append(RegistryCredential(name, entry["address"], entry["username"], entry["password"]))
    return tuple(out)


def parse_deployment(modules_content: Mapping[str, Any], source: str = "manifest") -> Deployment:
    if not isinstance(modules_content, Mapping):
        raise DeviceError("modulesContent is not an object", location=Location(file=source, json_path="modulesContent"))
    agent = _desired(modules_content, "$edgeAgent", source)
    hub = _desired(modules_content, "$edgeHub", source)
    raw_modules = agent.get("modules") or {}
    if not isinstance(raw_modules, Mapping):
        raise DeviceError("modules must be an object", location=Location(
            file=source, json_path="modulesContent.$edgeAgent.properties.desired.modules"))
    modules = {
        name: _module(name, spec, f"modulesContent.$edgeAgent.properties.desired.modules.{name}", source)
        for name, spec in raw_modules.items()
    }
    routes = hub.get("routes") or {}
    if not isinstance(routes, Mapping):
        raise DeviceError("routes must be an object", location=Location(
            file=source, json_path="modulesContent.$edgeHub.properties.desired.routes"))
    saf = hub.get("storeAndForwardConfiguration") or {}
    ttl = saf.get("timeToLiveSecs", DEFAULT_STORE_TTL) if isinstance(saf, Mapping) else DEFAULT_STORE_TTL
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
        raise DeviceError(f"timeToLiveSecs {ttl!r} is not a non-negative integer", location=Location(
            file=source,
            json_path="modulesContent.$edgeHub.properties.desired.storeAndForwardConfiguration.timeToLiveSecs"))
    twins = desired_from_modules_content(modules_content, source)
    return Deployment(modules, routes, str(hub.get("schemaVersion", "1.0")), ttl, twins, modules_content,
                      _registry_credentials(agent, source))


def load_manifest(path: Path) -> Deployment:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DeviceError(f"cannot read the manifest: {exc.strerror}", location=Location(file=str(path)),
                          hint="render one with 'edgegen genconfig' (it writes manifests/deployment.<platform>.json)"
                          ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        src = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else None
        raise DeviceError(f"the manifest is not valid JSON: {exc.msg}", location=Location(
            file=str(path), line=exc.lineno, column=exc.colno, source_line=src)) from None
    content = data.get("modulesContent") if isinstance(data, Mapping) else None
    if content is None and isinstance(data, Mapping) and isinstance(data.get("content"), Mapping):
        content = data["content"].get("modulesContent")  # a configuration (deployment at scale) file
    if not isinstance(content, Mapping):
        raise DeviceError("the manifest has no modulesContent", location=Location(file=str(path)),
                          hint='a deployment manifest is {"modulesContent": {"$edgeAgent": …, "$edgeHub": …}}')
    return parse_deployment(content, str(path))


class DeploymentSource(Protocol):
    """Where the device gets its deployment (a manifest file now, the hub stand-in's twins later)."""

    async def current(self) -> Deployment: ...

    def changes(self) -> AsyncIterator[Deployment]:
        """Each later deployment, as it appears (never ends by itself)."""
        ...


class ManifestFile:
    """A manifest file; a change of its content is a new deployment (polled, ``interval`` seconds)."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._seen: bytes | None = None
        self.last_error: DeviceError | None = None

    async def current(self) -> Deployment:
        self._seen = self.path.read_bytes() if self.path.exists() else None
        return load_manifest(self.path)

    async def changes(self) -> AsyncIterator[Deployment]:
        while True:
            await asyncio.sleep(self.interval)
            try:
                data = self.path.read_bytes()
            except OSError:
                continue
            if data != self._seen:
                self._seen = data
                try:
                    deployment = load_manifest(self.path)
                except DeviceError as exc:
                    self.last_error = exc  # a broken edit keeps the running deployment; the device logs it
                    continue
                self.last_error = None
                yield deployment
