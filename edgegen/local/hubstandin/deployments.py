"""At-scale deployments, pure: which configurations target a device, and the module twins they produce.

IoT Hub's rules, as the stand-in applies them:
- A *base* deployment sets ``$edgeAgent`` ``properties.desired`` as a whole. Among the base deployments whose
  target condition matches a device, the highest priority wins (ties: the most recently created).
- A *layered* deployment sets property paths (``properties.desired.modules.x``) instead. Every matching layered
  deployment is merged on top of the base, in ascending priority (ties: older first), so the highest wins.
- A device with no matching base keeps the content last applied to it directly (``applyConfigurationContent``),
  and layered deployments merge on top of that.

Automatic device management (ADM) configurations carry ``deviceContent`` (device twins) or ``moduleContent``
(module twins; the target condition starts ``FROM devices.modules WHERE``) instead of ``modulesContent``:
of those targeting a twin the highest priority wins (ties: the most recently created) and its content is
merged into the twin's desired properties once, when it becomes Applied; IoT Hub never takes it back.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgegen.local.hubstandin.errors import InvalidArgument, PreconditionFailed
from edgegen.local.hubstandin.query import QueryError, Source, Target, compile_target

__all__ = [
    "CONTENT_KINDS",
    "Configuration",
    "adm_patch",
    "check_etag",
    "desired_from_content",
    "diff_patch",
    "effective_desired",
    "is_layered",
    "merge_patch",
    "select_configurations",
    "validate_configuration_id",
]

ModulesContent = Mapping[str, Mapping[str, Any]]

CONTENT_KINDS = {"modulesContent": "edge", "deviceContent": "device", "moduleContent": "module"}
_ID_RE = re.compile(r"^[a-z0-9\-:+%_#*?!(),=@;$']{1,128}$")


def validate_configuration_id(config_id: str) -> None:
    if not _ID_RE.match(config_id):
        raise InvalidArgument(
            f"configuration id {config_id!r} is not valid",
            hint="use at most 128 lowercase letters, digits and - : + % _ # * ? ! ( ) , = @ ; $ '",
        )


@dataclass
class Configuration:
    id: str
    content: dict[str, Any]  # {"modulesContent": {...}} or {"deviceContent": {...}} or {"moduleContent": {...}}
    target_condition: str = ""
    priority: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # name -> query
    schema_version: str = "1.0"
    created: str = ""
    updated: str = ""
    etag: str = ""
    sequence: int = 0  # creation order, for priority ties
    _target: Target | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        """``edge`` (an IoT Edge deployment), ``device`` or ``module`` (automatic device management)."""
        for key, kind in CONTENT_KINDS.items():
            if self.content.get(key):
                return kind
        return "edge"

    @property
    def modules_content(self) -> dict[str, Any]:
        return dict(self.content.get("modulesContent") or {})

    @property
    def adm_content(self) -> dict[str, Any]:
        return dict(self.content.get("deviceContent") or self.content.get("moduleContent") or {})

    @property
    def layered(self) -> bool:
        return is_layered(self.modules_content)

    @property
    def target(self) -> Target:
        if self._target is None:
            try:
                self._target = compile_target(self.target_condition or "")
            except QueryError as exc:
                raise InvalidArgument(f"targetCondition: {exc.render()}", hint=exc.hint) from None
        return self._target

    def targets(self, twin_doc: Mapping[str, Any]) -> bool:
        return self.target.matches(twin_doc)

    def check(self) -> None:
        """The rules a new configuration must keep (content kind, target collection)."""
        kinds = [k for k in CONTENT_KINDS if self.content.get(k)]
        if len(kinds) != 1:
            raise InvalidArgument("content needs exactly one non-empty modulesContent, deviceContent or moduleContent",
                                  hint="an IoT Edge deployment uses modulesContent; automatic device management "
                                       "uses deviceContent or moduleContent")
        want = Source.MODULES if self.kind == "module" else Source.DEVICES
        if self.target_condition.strip() and self.target.source is not want:
            raise InvalidArgument(
                f"the targetCondition of a {self.kind} configuration must look at {want.value}",
                hint="module configurations target with: FROM devices.modules WHERE …" if self.kind == "module"
                else "device and edge configurations target device twins: tags.x = 'y' (no FROM)")
        if self.kind == "edge":
            effective_desired(self.modules_content, [])
        else:
            adm_patch(self.adm_content)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "schemaVersion": self.schema_version, "labels": self.labels, "content": self.content,
            "targetCondition": self.target_condition, "createdTimeUtc": self.created,
            "lastUpdatedTimeUtc": self.updated, "priority": self.priority, "etag": self.etag,
            "metrics": {"results": {}, "queries": self.metrics}, "sequence": self.sequence,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Configuration:
        metrics = d.get("metrics") or {}
        content = d.get("content") or {}
        if not isinstance(content, Mapping) or not isinstance(metrics, Mapping):
            raise InvalidArgument("content and metrics must be JSON objects")
        try:
            priority = int(d.get("priority") or 0)
        except (TypeError, ValueError):
            raise InvalidArgument(f"priority must be an integer, not {d.get('priority')!r}") from None
        return cls(
            id=d["id"], content={k: v for k, v in content.items() if v is not None},
            target_condition=d.get("targetCondition") or "", priority=priority,
            labels=dict(d.get("labels") or {}), metrics=dict(metrics.get("queries") or {}),
            schema_version=d.get("schemaVersion") or "1.0", created=d.get("createdTimeUtc") or "",
            updated=d.get("lastUpdatedTimeUtc") or "", etag=d.get("etag") or "", sequence=int(d.get("sequence") or 0),
        )


def adm_patch(content: Mapping[str, Any]) -> dict[str, Any]:
    """The desired-properties merge patch of a deviceContent/moduleContent (``properties.desired[.a.b]`` keys)."""
    patch: dict[str, Any] = {}
    for key, value in content.items():
        if key == "properties.desired":
            if not isinstance(value, Mapping):
                raise InvalidArgument("content.properties.desired must be an object")
            patch = merge_patch(patch, dict(value))
        elif key.startswith("properties.desired.") and all(key.split(".")[2:]):
            node: Any = value
            for part in reversed(key.split(".")[2:]):
                node = {part: node}
            patch = merge_patch(patch, node)
        else:
            raise InvalidArgument(f"configuration content has key {key!r}",
                                  hint="device and module content keys are 'properties.desired' or "
                                       "'properties.desired.<path>'")
    return patch


def is_layered(modules_content: ModulesContent) -> bool:
    """A base deployment sets ``$edgeAgent.properties.desired`` whole; anything else is layered."""
    agent = modules_content.get("$edgeAgent")
    return not (isinstance(agent, Mapping) and "properties.desired" in agent)


def select_configurations(
    twin_doc: Mapping[str, Any], configurations: Iterable[Configuration]
) -> tuple[Configuration | None, list[Configuration]]:
    """The base deployment that wins for a device and the layered ones, lowest priority first."""
    base: Configuration | None = None
    layered: list[Configuration] = []
    for cfg in configurations:
        if cfg.kind != "edge" or not cfg.targets(twin_doc):
            continue
        if cfg.layered:
            layered.append(cfg)
        elif base is None or (cfg.priority, cfg.sequence) > (base.priority, base.sequence):
            base = cfg
    layered.sort(key=lambda c: (c.priority, c.sequence))
    return base, layered


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): objects merge, ``None`` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def diff_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``old`` into ``new`` (removed keys become ``None``)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = diff_patch(before, value)
            if sub:
                patch[key] = sub
        elif key not in old or before != value:
            patch[key] = copy.deepcopy(value)
    return patch


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = copy.deepcopy(value)


def desired_from_content(modules_content: ModulesContent, base: Mapping[str, dict[str, Any]] | None = None
                         ) -> dict[str, dict[str, Any]]:
    """Apply one modulesContent to per-module desired properties (``properties.desired[.a.b]`` keys)."""
    result = {module: copy.deepcopy(desired) for module, desired in (base or {}).items()}
    for module, content in modules_content.items():
        if not isinstance(content, Mapping):
            raise InvalidArgument(f"modulesContent.{module} must be an object")
        for key, value in content.items():
            if key == "properties.desired":
                if not isinstance(value, Mapping):
                    raise InvalidArgument(f"modulesContent.{module}.properties.desired must be an object")
                result[module] = copy.deepcopy(dict(value))
            elif key.startswith("properties.desired."):
                _set_path(result.setdefault(module, {}), key.split(".")[2:], value)
            else:
                raise InvalidArgument(
                    f"modulesContent.{module} has key {key!r}",
                    hint="module content keys are 'properties.desired' or 'properties.desired.<path>'",
                )
    return result


def effective_desired(
    base: ModulesContent | None, layered: Iterable[ModulesContent]
) -> dict[str, dict[str, Any]]:
    """Per-module desired properties: the base content, then each layered content on top, in order."""
    desired = desired_from_content(base or {})
    for content in layered:
        desired = desired_from_content(content, desired)
    return desired


def check_etag(if_match: str | None, current: str, what: str) -> None:
    wanted = (if_match or "").strip().strip('"')
    if wanted in ("*", ""):
        return
    if wanted != current.strip('"'):
        raise PreconditionFailed(f"{what}: the ETag {if_match} does not match the current {current}",
                                 hint="read it again and retry with the new etag")
