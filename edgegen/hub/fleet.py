"""fleet.yaml: device groups with variable overrides, rendered, validated and deployed at scale.

    template: deployment.template.json     # optional (default: as genconfig finds it)
    platform: amd64                        # optional
    variables: {SEND_INTERVAL: "1"}        # fleet-wide, over .env and the environment
    groups:
      prod:
        targetCondition: "tags.environment='prod'"   # default: tags.fleetGroup='<group>'
        priority: 10                                  # default 0
        layered: false
        labels: {team: vision}
        metrics: {applied: "SELECT deviceId FROM devices WHERE …"}
        variables: {SEND_INTERVAL: "5"}
        devices:                                      # optional; a device with variables gets its own
          cam-001: {variables: {SEND_INTERVAL: "2"}}  # deployment <group>-<device> (deviceId=…, priority+1)
          cam-002: {}

Every group becomes one at-scale deployment named after it; every device with its own variables one more,
targeted by ``deviceId`` one priority above its group, so it wins there. Renders are cached by their effective
variables and validation by the rendered manifest, so a fleet costs one render per distinct variable set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.private import write_private
from edgegen.common.safeload import InputError, loads_yaml, read_text
from edgegen.errors import EdgegenError, Location
from edgegen.generator.atomic import write_text_atomic
from edgegen.generator.genconfig import carries_registry_password
from edgegen.hub.errors import HubClientError

__all__ = ["FleetDeployment", "FleetPlan", "deploy_fleet", "load_fleet", "render_fleet", "write_fleet"]

_GROUP_KEYS = {"targetCondition", "priority", "layered", "labels", "metrics", "variables", "devices"}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9\-_]{0,100}$")


@dataclass(frozen=True)
class FleetDeployment:
    name: str
    group: str
    target_condition: str
    priority: int
    layered: bool
    labels: Mapping[str, str]
    metrics: Mapping[str, str]
    variables: Mapping[str, str]
    manifest: Mapping[str, Any]  # {"modulesContent": …}
    findings: tuple[Any, ...] = ()
    device: str | None = None


@dataclass
class FleetPlan:
    deployments: list[FleetDeployment]
    device_deployment: dict[str, str]  # device id -> the deployment that applies to it
    renders: int = 0  # distinct renders done
    validations: int = 0  # distinct manifests validated
    stats: dict[str, float] = field(default_factory=dict)

    def errors(self) -> list[tuple[str, Any]]:
        return [(d.name, f) for d in self.deployments for f in d.findings if getattr(f, "is_error", False)]


class _Lines:
    """Line numbers of keys in the YAML file, for errors (composed on the first error: a valid file of 10,000
    devices need not be parsed twice)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._marks: dict[tuple[str, ...], int] | None = None

    @property
    def marks(self) -> dict[tuple[str, ...], int]:
        if self._marks is None:
            import yaml

            self._marks = {}
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            with contextlib.suppress(yaml.YAMLError):
                self._walk(yaml.compose(self.text, Loader=loader), ())
        return self._marks

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        import yaml

        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                self.marks[sub] = key.start_mark.line + 1
                self._walk(value, sub)

    def at(self, *path: str) -> int | None:
        while path and path not in self.marks:
            path = path[:-1]
        return self.marks.get(path)


def _err(file: Path, lines: _Lines, path: tuple[str, ...], message: str, hint: str | None = None) -> HubClientError:
    return HubClientError(message, hint=hint, location=Location(
        file=str(file), line=lines.at(*path), json_path=".".join(path) or None))


def _str_map(value: Any, file: Path, lines: _Lines, path: tuple[str, ...]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _err(file, lines, path, f"{'.'.join(path)} must be a mapping of names to values")
    return {str(k): "" if v is None else (json.dumps(v) if isinstance(v, bool) else str(v)) for k, v in value.items()}


def load_fleet(path: Path) -> dict[str, Any]:
    """Parse and check fleet.yaml; errors name the file, line and key."""
    try:
        text = read_text(path, what="the fleet file")
        doc = loads_yaml(text, file=str(path), what="the fleet file")
    except InputError as exc:
        raise exc.as_error(HubClientError) from None
    lines = _Lines(text)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("groups"), Mapping) or not doc["groups"]:
        raise _err(path, lines, ("groups",), "the fleet file needs a 'groups' mapping",
                   hint="groups: {prod: {targetCondition: \"tags.environment='prod'\", priority: 10}}")
    groups: dict[str, Any] = {}
    for name, spec in doc["groups"].items():
        name = str(name)
        where = ("groups", name)
        spec = spec or {}
        if not _NAME_RE.match(name):
            raise _err(path, lines, where, f"group name {name!r} is not a valid deployment name",
                       hint="use lowercase letters, digits, '-' and '_'")
        if not isinstance(spec, Mapping):
            raise _err(path, lines, where, f"group {name!r} must be a mapping")
        unknown = set(spec) - _GROUP_KEYS
        if unknown:
            raise _err(path, lines, (*where, sorted(unknown)[0]), f"unknown key {sorted(unknown)[0]!r} in group {name}",
                       hint=f"known keys: {', '.join(sorted(_GROUP_KEYS))}")
        priority = spec.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool) or priority < 0:
            raise _err(path, lines, (*where, "priority"), "priority must be a non-negative integer")
        devices_raw = spec.get("devices") or {}
        if isinstance(devices_raw, list):
            devices_raw = {str(d): {} for d in devices_raw}
        if not isinstance(devices_raw, Mapping):
            raise _err(path, lines, (*where, "devices"), "devices must be a list of ids or a mapping")
        devices = {str(d): _str_map((v or {}).get("variables") if isinstance(v, Mapping) else None, path, lines,
                                    (*where, "devices", str(d), "variables"))
                   for d, v in devices_raw.items()}
        groups[name] = {
            "targetCondition": str(spec.get("targetCondition") or f"tags.fleetGroup='{name}'"),
            "priority": priority, "layered": bool(spec.get("layered", False)),
            "labels": _str_map(spec.get("labels"), path, lines, (*where, "labels")),
            "metrics": _str_map(spec.get("metrics"), path, lines, (*where, "metrics")),
            "variables": _str_map(spec.get("variables"), path, lines, (*where, "variables")),
            "devices": devices,
        }
    return {"template": doc.get("template"), "platform": doc.get("platform"),
            "variables": _str_map(doc.get("variables"), path, lines, ("variables",)), "groups": groups}


def render_fleet(path: Path, *, cwd: Path | None = None, environ: Mapping[str, str] | None = None,
                 validate: bool = True) -> FleetPlan:
    """Render (and validate) one manifest per group and per device with its own variables."""
    import os
    import time

    from edgegen.hub.fleetrender import FleetRenderer

    base = cwd or path.parent
    env = dict(os.environ if environ is None else environ)
    spec = load_fleet(path)
    renders: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    checked: dict[str, tuple[Any, ...]] = {}
    plan = FleetPlan([], {})
    renderer = FleetRenderer(base, spec["template"], spec["platform"], env)
    t_render = t_validate = 0.0

    def build(variables: dict[str, str], where: str) -> tuple[dict[str, Any], tuple[Any, ...]]:
        nonlocal t_render, t_validate
        key = tuple(sorted(variables.items()))
        manifest = renders.get(key)
        if manifest is None:
            start = time.perf_counter()
            try:
                manifest = renderer.render(variables)
            except EdgegenError as exc:  # keeps its type and location (the template's line); says which render
                exc.add_note(f"while rendering {where}")
                raise
            renders[key] = manifest
            plan.renders += 1
            t_render += time.perf_counter() - start
        if not validate:
            return manifest, ()
        digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        if digest not in checked:
            from edgegen.generator.validation import validate_manifest

            start = time.perf_counter()
            checked[digest] = tuple(validate_manifest(manifest, file=where))
            plan.validations += 1
            t_validate += time.perf_counter() - start
        return manifest, checked[digest]

    for group, g in spec["groups"].items():
        group_vars = {**spec["variables"], **g["variables"]}
        manifest, findings = build(group_vars, f"{path.name}: group {group}")
        common = {"target_condition": g["targetCondition"], "layered": g["layered"], "labels": g["labels"],
                  "metrics": g["metrics"]}
        plan.deployments.append(FleetDeployment(group, group, priority=g["priority"], variables=group_vars,
                                                manifest=manifest, findings=findings, **common))
        for device, device_vars in g["devices"].items():
            if not device_vars:
                plan.device_deployment[device] = group
                continue
            name = f"{group}-{device}".lower()[:128]
            dvars = {**group_vars, **device_vars}
            dmanifest, dfindings = build(dvars, f"{path.name}: device {device}")
            plan.deployments.append(FleetDeployment(
                name, group, f"deviceId='{device}'", g["priority"] + 1, g["layered"], g["labels"], g["metrics"],
                dvars, dmanifest, dfindings, device))
            plan.device_deployment[device] = name
    plan.stats = {"render_s": t_render, "validate_s": t_validate}
    return plan


def write_fleet(plan: FleetPlan, out_dir: Path) -> list[Path]:
    """One ``<deployment>.json`` per deployment plus ``fleet-index.json`` (device -> deployment), atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for d in plan.deployments:
        target = out_dir / f"{d.name}.json"
        _write_atomic(target, json.dumps(d.manifest, indent=2), carries_registry_password(d.manifest))
        written.append(target)
    index = {"deployments": {d.name: {"group": d.group, "targetCondition": d.target_condition,
                                      "priority": d.priority, "file": f"{d.name}.json"} for d in plan.deployments},
             "devices": plan.device_deployment}
    _write_atomic(out_dir / "fleet-index.json", json.dumps(index, indent=2))
    written.append(out_dir / "fleet-index.json")
    return written


def _write_atomic(path: Path, text: str, private: bool = False) -> None:
    if private:  # a manifest with a registry password: 0600 from creation
        write_private(path, text, private_parent=False)
    else:
        write_text_atomic(path, text)


def deploy_fleet(path: Path, client: Any, *, validate: bool = True) -> list[Any]:
    """Render the fleet, refuse on validation errors (unless told not to), create/update each deployment."""
    from edgegen.hub.client import AtScaleDeployment

    plan = render_fleet(path, validate=validate)
    errors = plan.errors()
    if errors:
        name, first = errors[0]
        raise HubClientError(
            f"{len(errors)} validation error(s) in the fleet's manifests; first, in deployment {name}: "
            f"{first.message} at {first.path}", location=Location(file=str(path)),
            hint="fix the template or the variables, or pass --no-validation")
    results = []
    for d in plan.deployments:
        modules_content = dict(d.manifest.get("modulesContent") or {})
        results.append(client.deploy_at_scale(AtScaleDeployment(
            d.name, modules_content, d.target_condition, d.priority, d.labels, d.metrics, d.layered)))
    return results
