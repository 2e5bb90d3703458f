"""The deployment half of ``HubBackend``: applyConfigurationContent, configurations CRUD, recomputation.

A mixin so the backend stays one object for the wire layers while each file keeps one job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgegen.local.hubstandin.condition import compile_metric_query
from edgegen.local.hubstandin.deployments import (
    Configuration,
    check_etag,
    effective_desired,
    select_configurations,
    validate_configuration_id,
)
from edgegen.local.hubstandin.errors import AlreadyExists, InvalidArgument, NotFound
from edgegen.local.hubstandin.metrics import configuration_view
from edgegen.local.hubstandin.store import HubStore

__all__ = ["DeploymentsMixin"]


def _twin_key(device_id: str, module_id: str | None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id


class DeploymentsMixin:
    store: HubStore
    devices: dict[str, dict[str, Any]]
    modules: dict[str, dict[str, Any]]
    twins: dict[str, dict[str, Any]]
    configs: dict[str, Configuration]
    applied: dict[str, dict[str, Any]]
    _now: Callable[[], str]
    _next: Callable[[], int]
    _etag: Callable[[], str]
    get_device: Callable[[str], dict[str, Any]]
    twin_doc: Callable[[str], dict[str, Any]]
    put_module: Callable[..., dict[str, Any]]
    _save_twin: Callable[[str, str | None, dict[str, Any]], None]
    _set_desired: Callable[[str, str | None, dict[str, Any]], None]

    def apply_configuration(self, device_id: str, content: Mapping[str, Any]) -> None:
        device = self.get_device(device_id)
        modules_content = content.get("modulesContent")
        if not isinstance(modules_content, Mapping) or not modules_content:
            raise InvalidArgument("applyConfigurationContent needs a non-empty 'modulesContent' object")
        if not device["capabilities"].get("iotEdge"):
            raise InvalidArgument(f"device {device_id!r} is not an IoT Edge device", code="DeviceNotEdgeDevice",
                                  hint=f"create it with: edgegen hub device create {device_id} --edge")
        effective_desired(modules_content, [])  # validates the shape before anything is stored
        with self.store.batch():
            self.applied[device_id] = dict(modules_content)
            self.store.put("applied", device_id, self.applied[device_id])
            self._recompute([device_id])

    def get_configuration(self, config_id: str) -> Configuration:
        cfg = self.configs.get(config_id)
        if cfg is None:
            raise NotFound(f"configuration {config_id!r} not found", code="ConfigurationNotFound")
        return cfg

    def list_configurations(self, top: int | None = None) -> list[Configuration]:
        return sorted(self.configs.values(), key=lambda c: c.sequence)[: top or None]

    def put_configuration(self, config_id: str, body: Mapping[str, Any], if_match: str | None = None
                          ) -> tuple[Configuration, bool]:
        """Create (no If-Match) or update; an update may change only labels, metrics, priority, targetCondition."""
        validate_configuration_id(config_id)
        existing = self.configs.get(config_id)
        incoming = Configuration.from_dict({**body, "id": config_id})
        if incoming.priority < 0:
            raise InvalidArgument("priority must be a non-negative integer")
        for name, query in incoming.metrics.items():
            try:
                compile_metric_query(query)
            except Exception as exc:
                raise InvalidArgument(f"metric {name!r}: {exc}") from exc
        if incoming.target_condition:
            incoming.targets({})  # compiles: a bad condition fails here
        if existing is None:
            if if_match not in (None, "*", '"*"'):
                raise NotFound(f"configuration {config_id!r} not found", code="ConfigurationNotFound")
            content = incoming.content.get("modulesContent")
            if not isinstance(content, Mapping) or not content:
                raise InvalidArgument("content.modulesContent is required and must not be empty")
            effective_desired(content, [])
            incoming.created = incoming.updated = self._now()
            incoming.sequence = self._next()
            cfg, created = incoming, True
        else:
            if if_match is None:
                raise AlreadyExists(f"configuration {config_id!r} already exists", code="ConfigurationAlreadyExists",
                                    hint="update it with its etag, or pick another name")
            check_etag(if_match, existing.etag, f"configuration {config_id}")
            if incoming.content and incoming.content != existing.content:
                raise InvalidArgument(
                    f"the content of configuration {config_id!r} cannot be changed",
                    hint="only labels, metrics, priority and targetCondition may change; deploy a new configuration")
            cfg = existing
            cfg.labels, cfg.metrics = incoming.labels, incoming.metrics
            cfg.priority, cfg.target_condition = incoming.priority, incoming.target_condition
            cfg._matcher = None
            cfg.updated = self._now()
            created = False
        cfg.etag = self._etag()
        with self.store.batch():
            self.configs[config_id] = cfg
            self.store.put("config", config_id, cfg.to_dict())
            self._recompute()
        return cfg, created

    def delete_configuration(self, config_id: str, if_match: str | None = None) -> None:
        cfg = self.get_configuration(config_id)
        check_etag(if_match, cfg.etag, f"configuration {config_id}")
        with self.store.batch():
            self.configs.pop(config_id)
            self.store.delete("config", config_id)
            self._recompute()

    def _recompute(self, device_ids: list[str] | None = None) -> None:
        """Recompute the effective deployment of edge devices (all when ``device_ids`` is None)."""
        configs = self.list_configurations()
        for device_id in device_ids if device_ids is not None else list(self.devices):
            device = self.devices.get(device_id)
            if device is None or not device["capabilities"].get("iotEdge"):
                continue
            doc = self.twin_doc(device_id)
            targeted = [c for c in configs if c.targets(doc)]
            base, layered = select_configurations(doc, targeted)
            statuses = {c.id: {"status": "Targeted"} for c in targeted}
            for c in ([base] if base else []) + layered:
                statuses[c.id] = {"status": "Applied"}
            twin = self.twins[device_id]
            if twin.get("configurations") != statuses:
                twin["configurations"] = statuses
                self._save_twin(device_id, None, twin)
            base_content = base.modules_content if base else self.applied.get(device_id)
            if base_content is None and not layered:
                continue
            desired = effective_desired(base_content, [c.modules_content for c in layered])
            # like edgeAgent, give every module of the deployment an identity (and a twin)
            agent_modules = (desired.get("$edgeAgent") or {}).get("modules") or {}
            for module_id in agent_modules if isinstance(agent_modules, dict) else ():
                desired.setdefault(module_id, {})
            for module_id, props in desired.items():
                if _twin_key(device_id, module_id) not in self.modules:
                    self.put_module(device_id, module_id, {"managedBy": "iotEdge"})
                self._set_desired(device_id, module_id, props)

    def configuration_view(self, cfg: Configuration) -> dict[str, Any]:
        """The REST shape, with system metrics (targeted/applied/reported) and custom metric results."""
        return configuration_view(cfg, self.devices, self.twins, self.twin_doc)

