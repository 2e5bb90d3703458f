"""The configuration half of ``HubBackend``: applyConfigurationContent, configurations CRUD, and applying
deployments (``modulesContent``) and automatic device management (``deviceContent``/``moduleContent``)
to the twins they target.

A mixin so the backend stays one object for the wire layers while each file keeps one job. Statuses go where
IoT Hub's system metric queries look: ``configurations.[[id]].status`` (``Targeted``/``Applied``) on the
device twin and, for IoT Edge deployments, on the ``$edgeAgent`` module twin too; on module twins for
module configurations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from edgegen.local.hubstandin.deployments import (
    Configuration,
    adm_patch,
    check_etag,
    effective_desired,
    merge_patch,
    select_configurations,
    validate_configuration_id,
)
from edgegen.local.hubstandin.errors import AlreadyExists, InvalidArgument, NotFound
from edgegen.local.hubstandin.metrics import configuration_view
from edgegen.local.hubstandin.query import CompiledQuery, Source
from edgegen.local.hubstandin.store import HubStore

RECOMPUTE_CHUNK = 100  # devices per step when a configuration is applied to all of them

__all__ = ["DeploymentsMixin"]

AGENT = "$edgeAgent"


def _twin_key(device_id: str, module_id: str | None) -> str:
    return f"{device_id}/{module_id}" if module_id else device_id


def _winner(configs: list[Configuration]) -> Configuration | None:
    return max(configs, key=lambda c: (c.priority, c.sequence), default=None)


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
    twin_doc: Callable[..., dict[str, Any]]
    documents: Callable[[Source], list[dict[str, Any]]]
    compile_query: Callable[[str], CompiledQuery]
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

    def put_configuration(self, config_id: str, body: Mapping[str, Any], if_match: str | None = None,
                          *, defer: bool = False) -> tuple[Configuration, bool]:
        """Create or update a configuration and apply it to every device (``defer``: the caller applies it with
        ``recompute_in_chunks``, so that thousands of devices do not hold up the event loop)."""
        """Create (no If-Match) or update; an update may change only labels, metrics, priority, targetCondition."""
        validate_configuration_id(config_id)
        existing = self.configs.get(config_id)
        incoming = Configuration.from_dict({**body, "id": config_id})
        if incoming.priority < 0:
            raise InvalidArgument("priority must be a non-negative integer")
        for name, query in incoming.metrics.items():
            try:
                self.compile_query(query)
            except InvalidArgument as exc:
                raise InvalidArgument(f"metric {name!r}: {exc.message}", hint=exc.hint) from None
        incoming.target.matches({})  # compiles: a bad condition fails here
        if existing is None:
            if if_match not in (None, "*", '"*"'):
                raise NotFound(f"configuration {config_id!r} not found", code="ConfigurationNotFound")
            incoming.check()
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
            updated = Configuration.from_dict({**existing.to_dict(), "labels": incoming.labels,
                                               "metrics": {"queries": incoming.metrics},
                                               "priority": incoming.priority,
                                               "targetCondition": incoming.target_condition})
            updated.check()
            cfg, created = updated, False
            cfg.updated = self._now()
        cfg.etag = self._etag()
        with self.store.batch():
            self.configs[config_id] = cfg
            self.store.put("config", config_id, cfg.to_dict())
            if not defer:
                self._recompute()
        return cfg, created

    def delete_configuration(self, config_id: str, if_match: str | None = None, *, defer: bool = False) -> bool:
        """Delete a configuration; returns whether module twins need a look (pass it to ``recompute_in_chunks``
        when ``defer``)."""
        cfg = self.get_configuration(config_id)
        check_etag(if_match, cfg.etag, f"configuration {config_id}")
        with self.store.batch():
            self.configs.pop(config_id)
            self.store.delete("config", config_id)
            if not defer:
                self._recompute(module_twins=cfg.kind == "module")
        return cfg.kind == "module"

    async def recompute_in_chunks(self, *, module_twins: bool | None = None, chunk: int = RECOMPUTE_CHUNK) -> None:
        """``_recompute`` of every device, ``chunk`` devices per transaction, yielding to the event loop between
        chunks: a deployment to thousands of devices no longer delays the devices' packets (PUBACKs, twins)."""
        ids = list(self.devices)
        for start in range(0, len(ids), chunk):
            with self.store.batch():
                self._recompute(ids[start:start + chunk], module_twins=module_twins)
            await asyncio.sleep(0)

    # ---- applying configurations to twins -------------------------------------------------------------
    def _set_statuses(self, device_id: str, module_id: str | None, kinds: tuple[str, ...],
                      statuses: dict[str, dict[str, str]]) -> set[str]:
        """Replace the statuses of configurations of ``kinds`` on a twin; returns the ids newly Applied."""
        twin = self.twins[_twin_key(device_id, module_id)]
        old = dict(twin.get("configurations") or {})
        keep = {k: v for k, v in old.items() if k in self.configs and self.configs[k].kind not in kinds}
        new = {**keep, **statuses}
        if new != old:
            twin["configurations"] = new
            self._save_twin(device_id, module_id, twin)
        return {k for k, v in statuses.items()
                if v["status"] == "Applied" and old.get(k, {}).get("status") != "Applied"}

    def _apply_adm(self, device_id: str, module_id: str | None, configs: list[Configuration]) -> None:
        doc = self.twin_doc(device_id, module_id)
        targeted = [c for c in configs if c.targets(doc)]
        winner = _winner(targeted)
        statuses = {c.id: {"status": "Applied" if c is winner else "Targeted"} for c in targeted}
        newly = self._set_statuses(device_id, module_id, ("device", "module"), statuses)
        if winner is not None and winner.id in newly:
            twin = self.twins[_twin_key(device_id, module_id)]
            self._set_desired(device_id, module_id, merge_patch(twin["desired"], adm_patch(winner.adm_content)))

    def _recompute(self, device_ids: list[str] | None = None, *, module_twins: bool | None = None) -> None:
        """Re-apply configurations to the twins of ``device_ids`` (all devices when None). Module twins are
        looked at when module configurations exist (or ``module_twins`` says so: one was just deleted)."""
        configs = self.list_configurations()
        device_cfgs = [c for c in configs if c.kind == "device"]
        module_cfgs = [c for c in configs if c.kind == "module"]
        by_device: dict[str, list[str]] = {}
        if module_cfgs or module_twins:
            for module in self.modules.values():
                if module.get("managedBy") != "iotEdge":  # edge modules follow deployments, not ADM
                    by_device.setdefault(module["deviceId"], []).append(module["moduleId"])
        for device_id in device_ids if device_ids is not None else list(self.devices):
            device = self.devices.get(device_id)
            if device is None:
                continue
            self._apply_adm(device_id, None, device_cfgs)
            for module_id in by_device.get(device_id, ()):
                self._apply_adm(device_id, module_id, module_cfgs)
            if device["capabilities"].get("iotEdge"):
                self._deploy(device_id, configs)

    def _deploy(self, device_id: str, configs: list[Configuration]) -> None:
        """An edge device's effective deployment onto the twins of the module identities it has."""
        doc = self.twin_doc(device_id)
        base, layered = select_configurations(doc, configs)
        targeted = [c for c in configs if c.kind == "edge" and c.targets(doc)]
        statuses = {c.id: {"status": "Targeted"} for c in targeted}
        for c in ([base] if base else []) + layered:
            statuses[c.id] = {"status": "Applied"}
        self._set_statuses(device_id, None, ("edge",), statuses)
        if _twin_key(device_id, AGENT) in self.twins:
            self._set_statuses(device_id, AGENT, ("edge",), statuses)
        base_content = base.modules_content if base else self.applied.get(device_id)
        if base_content is None and not layered:
            return
        desired = effective_desired(base_content, [c.modules_content for c in layered])
        for module_id, props in desired.items():
            if _twin_key(device_id, module_id) in self.modules:  # identities are the device's to make
                self._set_desired(device_id, module_id, props)

    def configuration_view(self, cfg: Configuration) -> dict[str, Any]:
        """The REST shape, with system metrics (targeted/applied/reported) and custom metric results."""
        return configuration_view(cfg, self.compile_query, self.documents)
