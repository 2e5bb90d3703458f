"""Module twins on the local device: desired properties from the deployment, reported properties from modules.

Pure: ``Twins`` takes and returns values; ``TwinFile`` (at the bottom) is the only part that touches disk.
Desired properties come from ``modulesContent.<module>["properties.desired"]`` (and layered paths such as
``properties.desired.settings.x``). Each change of a module's desired properties raises its ``$version`` by one and
yields a patch (changed keys, removed keys as ``null``) for the edge hub to push to that module only. Reported
patches are merged (``null`` deletes) and raise the reported ``$version``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgegen.common.private import repair_private, write_private
from edgegen.errors import Location
from edgegen.local.errors import DeviceError

__all__ = ["ModuleTwin", "TwinFile", "Twins", "desired_from_modules_content", "diff_patch", "merge_patch"]

_DESIRED = "properties.desired"


def merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a twin patch (JSON merge patch: ``None`` deletes, dicts merge) and return ``target``."""
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(dict(value)) if isinstance(value, Mapping) else copy.deepcopy(value)
    return target


def diff_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The patch that turns ``old`` into ``new`` (``merge_patch(old, diff_patch(old, new)) == new``)."""
    patch: dict[str, Any] = {}
    for key in old:
        if key.startswith("$"):
            continue
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key.startswith("$"):
            continue
        before = old.get(key, _MISSING)
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            sub = diff_patch(before, value)
            if sub:
                patch[key] = sub
        elif before != value:
            patch[key] = copy.deepcopy(value)
    return patch


_MISSING = object()


def desired_from_modules_content(modules_content: Mapping[str, Any], source: str = "manifest") -> dict[str, dict]:
    """``{module: desired}`` for every module twin in ``modulesContent`` (system modules included)."""
    out: dict[str, dict] = {}
    for module, content in modules_content.items():
        where = f"modulesContent.{module}"
        if not isinstance(content, Mapping):
            raise DeviceError(
                f"module twin content of {module!r} is not an object",
                location=Location(file=source, json_path=where),
                hint='expected {"properties.desired": {...}}',
            )
        desired: dict[str, Any] = {}
        for key, value in content.items():
            if key == _DESIRED:
                if not isinstance(value, Mapping):
                    raise DeviceError(
                        "desired properties must be an object",
                        location=Location(file=source, json_path=f"{where}.{key}"),
                    )
                merge_patch(desired, value)
            elif key.startswith(_DESIRED + "."):
                path = key[len(_DESIRED) + 1:].split(".")
                node = desired
                for part in path[:-1]:
                    node = node.setdefault(part, {})
                node[path[-1]] = copy.deepcopy(value)
            else:
                raise DeviceError(
                    f"unknown key {key!r} in the module twin content of {module!r}",
                    location=Location(file=source, json_path=f"{where}.{key}"),
                    hint="module twin content holds 'properties.desired' (or 'properties.desired.<path>')",
                )
        out[module] = desired
    return out


@dataclass
class ModuleTwin:
    desired: dict[str, Any] = field(default_factory=dict)
    desired_version: int = 1
    reported: dict[str, Any] = field(default_factory=dict)
    reported_version: int = 1

    def document(self) -> dict[str, Any]:
        """The twin as a module's GET sees it: ``{"desired": {..., "$version"}, "reported": {..., "$version"}}``."""
        return {
            "desired": {**copy.deepcopy(self.desired), "$version": self.desired_version},
            "reported": {**copy.deepcopy(self.reported), "$version": self.reported_version},
        }


class Twins:
    """All module twins of one device."""

    def __init__(self, twins: Mapping[str, ModuleTwin] | None = None) -> None:
        self._twins: dict[str, ModuleTwin] = dict(twins or {})

    def get(self, module: str) -> ModuleTwin:
        return self._twins.setdefault(module, ModuleTwin())

    def modules(self) -> list[str]:
        return sorted(self._twins)

    def apply_desired(self, desired_by_module: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Set every module's desired properties; return ``{module: patch with $version}`` for those that changed.

        Modules absent from the deployment keep their reported properties but lose their desired ones.
        """
        patches: dict[str, dict[str, Any]] = {}
        for module in set(self._twins) | set(desired_by_module):
            twin = self.get(module)
            new = copy.deepcopy(dict(desired_by_module.get(module, {})))
            patch = diff_patch(twin.desired, new)
            if patch:
                twin.desired = new
                twin.desired_version += 1
                patches[module] = {**patch, "$version": twin.desired_version}
        return patches

    def report(self, module: str, patch: Mapping[str, Any]) -> int:
        """Merge a reported-properties patch from ``module``; return the new reported ``$version``."""
        twin = self.get(module)
        merge_patch(twin.reported, patch)
        twin.reported_version += 1
        return twin.reported_version

    def to_dict(self) -> dict[str, Any]:
        return {
            m: {"desired": t.desired, "desiredVersion": t.desired_version,
                "reported": t.reported, "reportedVersion": t.reported_version}
            for m, t in sorted(self._twins.items())
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Twins:
        return cls({
            m: ModuleTwin(dict(v.get("desired", {})), int(v.get("desiredVersion", 1)),
                          dict(v.get("reported", {})), int(v.get("reportedVersion", 1)))
            for m, v in data.items()
        })


class TwinFile:
    """Twins persisted as one JSON file (0600), rewritten atomically after each change."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> Twins:
        repair_private(self.path)  # desired properties carry deployment secrets (env, registry passwords)
        try:
            return Twins.from_dict(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return Twins()
        except (ValueError, AttributeError) as exc:
            raise DeviceError(
                f"twin state is unreadable: {exc}", location=Location(file=str(self.path)),
                hint="delete the file to start with fresh twins",
            ) from None

    def save(self, twins: Twins) -> None:
        write_private(self.path, json.dumps(twins.to_dict(), indent=1, sort_keys=True), fsync=False)
