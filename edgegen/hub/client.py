"""The IoT Hub service client edgegen uses: a thin, typed wrapper over the real ``azure-iot-hub`` SDK.

SDK objects never leave this module: callers get plain dicts and edgegen dataclasses. SDK and HTTP failures
become ``HubClientError`` with the status, Azure error code and a hint. The SDK is imported lazily.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from edgegen.common import ids
from edgegen.hub.connection import HubTarget
from edgegen.hub.errors import HubClientError, HubConflict, HubNotFound, hub_error

__all__ = ["AtScaleDeployment", "DeployResult", "DeviceIdentity", "HubClient"]

T = TypeVar("T")


def _check_ids(device_id: str, module_id: str | None = None) -> None:
    """Refuse an id IoT Hub would refuse before any call (a ``/`` would otherwise change the URL's path)."""
    try:
        ids.check_device_id(device_id)
        if module_id is not None:
            ids.check_module_id(module_id)
    except ids.InvalidIdError as exc:
        raise HubClientError(exc.message, status=400, code="ArgumentInvalid", hint=exc.hint) from None


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    edge: bool
    primary_key: str
    connection_string: str  # what the device uses: HostName (no port);DeviceId;SharedAccessKey
    status: str


@dataclass(frozen=True)
class AtScaleDeployment:
    name: str
    modules_content: Mapping[str, Any]
    target_condition: str
    priority: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)  # name -> query
    layered: bool = False


@dataclass(frozen=True)
class DeployResult:
    action: str  # "applied" (one device), "created", "updated"
    target: str
    notes: tuple[str, ...] = ()
    etag: str | None = None


_HINTS = {
    401: "the hub refused the credentials: check the connection string's key and policy name",
    404: "check the device or configuration name (edgegen hub device create DEVICE --edge)",
    409: "it already exists",
    412: "it changed meanwhile (ETag mismatch); read it again and retry",
}


class HubClient:
    """``HubClient(target)``: registry and configuration calls against Azure or the local stand-in."""

    def __init__(self, target: HubTarget) -> None:
        self.target = target
        self._registry: Any = None
        self._configs: Any = None

    # ---- SDK plumbing --------------------------------------------------------------------------------
    def _trust(self, manager: Any) -> Any:
        if self.target.ca_file:
            manager.protocol.config.connection.verify = self.target.ca_file
        return manager

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from azure.iot.hub import IoTHubRegistryManager

            self._registry = self._trust(IoTHubRegistryManager.from_connection_string(self.target.connection_string))
        return self._registry

    @property
    def configurations(self) -> Any:
        if self._configs is None:
            from azure.iot.hub import IoTHubConfigurationManager

            self._configs = self._trust(
                IoTHubConfigurationManager.from_connection_string(self.target.connection_string))
        return self._configs

    @contextmanager
    def _calling(self, what: str) -> Iterator[None]:
        import requests
        from msrest.exceptions import ClientRequestError, HttpOperationError

        try:
            yield
        except HttpOperationError as exc:
            raise self._http_error(what, exc) from None
        except (ClientRequestError, requests.RequestException) as exc:
            raise HubClientError(
                f"{what}: cannot reach the hub at {self.target.host_name} ({type(exc).__name__})",
                hint="is the hub running? start the local one with 'edgegen hub serve'"
                if self.target.host_name.startswith("127.") else "check the network and the HostName",
            ) from None

    def _http_error(self, what: str, exc: Any) -> HubClientError:
        response = exc.response
        status = int(response.status_code)
        code = response.headers.get("iothub-errorcode")
        detail = ""
        try:
            body = response.json()
            detail = str(body.get("Message") or body.get("message") or "")
            if detail.startswith("ErrorCode:"):
                code = code or detail[10:].split(";", 1)[0]
                detail = detail.split(";", 1)[1] if ";" in detail else ""
        except (ValueError, AttributeError):
            detail = (response.text or "")[:200]
        message = f"{what}: the hub answered {status} {response.reason or ''}".rstrip()
        if code:
            message += f" ({code})"
        if detail:
            message += f": {detail}"
        return hub_error(message, status, code=code, hint=_HINTS.get(status))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self._calling(what):
            return fn()
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- registry ------------------------------------------------------------------------------------
    def _identity(self, device: Any) -> DeviceIdentity:
        key = device.authentication.symmetric_key.primary_key
        cs = f"HostName={self.target.device_host_name};DeviceId={device.device_id};SharedAccessKey={key}"
        edge = bool(device.capabilities and device.capabilities.iot_edge)
        return DeviceIdentity(device.device_id, edge, key, cs, device.status)

    def create_device(self, device_id: str, *, edge: bool = False, exist_ok: bool = False) -> DeviceIdentity:
        """Register a device with generated keys; with ``exist_ok`` an existing device is returned as is."""
        _check_ids(device_id)
        try:
            device = self._call(f"creating device {device_id!r}", lambda: self.registry.create_device_with_sas(
                device_id, None, None, "enabled", iot_edge=edge))
        except HubConflict as exc:
            if not exist_ok:
                exc.hint = (f"device {device_id!r} is already registered: pass --exist-ok to use it as it is (its "
                            "connection string is printed), or choose another id")
                raise
            device = self._call(f"reading device {device_id!r}", lambda: self.registry.get_device(device_id))
        return self._identity(device)

    def get_device(self, device_id: str) -> DeviceIdentity:
        _check_ids(device_id)
        return self._identity(self._call(f"reading device {device_id!r}", lambda: self.registry.get_device(device_id)))

    def list_devices(self) -> list[DeviceIdentity]:
        return [self._identity(d) for d in self._call("listing devices", lambda: self.registry.get_devices())]

    def set_tags(self, device_id: str, tags: Mapping[str, Any]) -> dict[str, Any]:
        from azure.iot.hub.models import Twin

        twin = self._call(f"tagging device {device_id!r}",
                          lambda: self.registry.update_twin(device_id, Twin(tags=dict(tags)), "*"))
        return dict(twin.tags or {})

    def module_twin(self, device_id: str, module_id: str) -> dict[str, Any]:
        _check_ids(device_id, module_id)
        twin = self._call(f"reading twin {device_id}/{module_id}",
                          lambda: self.registry.get_module_twin(device_id, module_id))
        return {"desired": dict(twin.properties.desired or {}), "reported": dict(twin.properties.reported or {})}

    def list_modules(self, device_id: str) -> list[dict[str, Any]]:
        modules = self._call(f"listing modules of {device_id!r}", lambda: self.registry.get_modules(device_id))
        return [{"moduleId": m.module_id, "connectionState": m.connection_state, "managedBy": m.managed_by}
                for m in modules]

    # ---- deployments ---------------------------------------------------------------------------------
    def deploy_to_device(self, device_id: str, modules_content: Mapping[str, Any]) -> DeployResult:
        """``apply_configuration_on_edge_device``: the device's modules become exactly this content."""
        _check_ids(device_id)
        from azure.iot.hub.models import ConfigurationContent

        content = ConfigurationContent(modules_content=dict(modules_content))
        self._call(f"deploying to device {device_id!r}",
                   lambda: self.configurations.apply_configuration_on_edge_device(device_id, content))
        return DeployResult("applied", device_id)

    def deploy_at_scale(self, spec: AtScaleDeployment) -> DeployResult:
        """Create the configuration, or update it when it exists.

        IoT Hub lets an update change only labels, metrics, priority and the target condition; the content of
        an existing configuration is fixed. When the content differs, this refuses and says to use a new name.
        """
        from azure.iot.hub.models import Configuration, ConfigurationContent, ConfigurationMetrics

        metrics = ConfigurationMetrics(queries=dict(spec.metrics)) if spec.metrics else None
        existing = self._find_configuration(spec.name)
        if existing is None:
            cfg = Configuration(id=spec.name, schema_version="1.0", labels=dict(spec.labels) or None,
                                content=ConfigurationContent(modules_content=dict(spec.modules_content)),
                                target_condition=spec.target_condition, priority=spec.priority, metrics=metrics)
            created = self._call(f"creating deployment {spec.name!r}",
                                 lambda: self.configurations.create_configuration(cfg))
            return DeployResult("created", spec.name, etag=created.etag)
        old_content = dict((existing.content.modules_content or {}) if existing.content else {})
        if _canonical(old_content) != _canonical(spec.modules_content):
            raise HubClientError(
                f"deployment {spec.name!r} exists with different content, and IoT Hub does not allow changing "
                "the content of a deployment",
                hint=f"deploy under a new name (e.g. {spec.name}-v2) with a higher priority, then delete the old "
                     "one; only labels, metrics, priority and the target condition can be updated in place",
            )
        notes = []
        existing.labels = dict(spec.labels) or existing.labels
        if spec.metrics:
            existing.metrics = metrics
        for attr, value in (("priority", spec.priority), ("target_condition", spec.target_condition)):
            if getattr(existing, attr) != value:
                notes.append(f"{attr.replace('_', ' ')}: {getattr(existing, attr)!r} -> {value!r}")
                setattr(existing, attr, value)
        updated = self._call(f"updating deployment {spec.name!r}",
                             lambda: self.configurations.update_configuration(existing, existing.etag))
        notes.append("only labels, metrics, priority and target condition are updated; the content stays")
        return DeployResult("updated", spec.name, tuple(notes), etag=updated.etag)

    def _find_configuration(self, name: str) -> Any:
        try:
            return self._call(f"reading deployment {name!r}", lambda: self.configurations.get_configuration(name))
        except HubNotFound:
            return None

    def get_deployment(self, name: str) -> dict[str, Any]:
        cfg = self._call(f"reading deployment {name!r}", lambda: self.configurations.get_configuration(name))
        return {
            "id": cfg.id, "priority": cfg.priority, "targetCondition": cfg.target_condition,
            "labels": dict(cfg.labels or {}), "etag": cfg.etag,
            "systemMetrics": dict((cfg.system_metrics.results or {}) if cfg.system_metrics else {}),
            "metrics": dict((cfg.metrics.results or {}) if cfg.metrics else {}),
        }

    def delete_deployment(self, name: str) -> None:
        self._call(f"deleting deployment {name!r}", lambda: self.configurations.delete_configuration(name))


def _canonical(content: Mapping[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"))
