"""Read access to a deployment manifest's parts, the way iotedgedev's ``DeploymentManifest`` finds them.

``modulesContent`` (or the legacy ``moduleContent``, or ``content.modulesContent`` in a layered deployment)
holds one entry per twin. Keys may be dotted (``"properties.desired"``, or in layered deployments
``"properties.desired.modules.x"``); ``split_content`` expands dotted keys into nested dicts like iotedgedev's
``dot_to_json`` while keeping references to the original leaf objects, so edits made through the view
(image replacement, createOptions conversion) land in the manifest itself.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from edgegen.generator.errors import Location, RenderError

__all__ = ["all_modules", "is_layered", "modules_content", "split_content", "system_modules", "user_modules"]

Json = dict[str, Any]


def is_layered(manifest: Json) -> bool:
    return "content" in manifest


def modules_content(manifest: Json, file: str | None = None) -> Json:
    content = manifest.get("content")
    if "modulesContent" in manifest:
        key, value = "modulesContent", manifest["modulesContent"]
    elif "moduleContent" in manifest:
        key, value = "moduleContent", manifest["moduleContent"]
    elif isinstance(content, dict) and "modulesContent" in content:
        key, value = "content.modulesContent", content["modulesContent"]
    else:
        raise RenderError(
            "the template has no modulesContent",
            location=Location(file=file, json_path="$"),
            hint='a deployment template is {"modulesContent": {"$edgeAgent": ..., "$edgeHub": ...}} '
            '(or {"content": {"modulesContent": ...}} for a layered deployment)',
        )
    if not isinstance(value, dict):
        raise RenderError(f"{key} must be an object of twins, not {type(value).__name__}",
                          location=Location(file=file, json_path=key),
                          hint='{"modulesContent": {"$edgeAgent": ..., "$edgeHub": ...}}')
    return value


def split_content(content: Json) -> Json:
    """iotedgedev's ``dot_to_json`` for what genconfig reads: each twin's dotted keys become nested dicts.

    Values are shared, never copied, so edits made through the view land in the manifest. Only the twin level
    is split (``"properties.desired"``, or ``"properties.desired.modules.x"`` in layered deployments); a twin
    written as nested ``"properties": {"desired": ...}`` is used as it is.
    """
    return {key: _split_level(value) for key, value in content.items()}


def _split_level(value: Any) -> Any:
    if not isinstance(value, dict) or not any("." in k for k in value):
        return value
    out: Json = {}
    for key, item in value.items():
        parts = key.split(".")
        target = out
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = target[part] = {}
            target = nxt
        target[parts[-1]] = item
    return out


def _desired(manifest: Json, prop: str, file: str | None) -> MutableMapping[str, Any] | None:
    split = split_content(modules_content(manifest, file))
    try:
        value = split["$edgeAgent"]["properties"]["desired"][prop]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def user_modules(manifest: Json, file: str | None = None) -> MutableMapping[str, Any]:
    """``$edgeAgent`` desired ``modules`` (``{}`` when there are none)."""
    return _desired(manifest, "modules", file) or {}


def system_modules(manifest: Json, file: str | None = None) -> MutableMapping[str, Any]:
    return _desired(manifest, "systemModules", file) or {}


def all_modules(manifest: Json, file: str | None = None) -> dict[str, Any]:
    """User modules then system modules (a system module of the same name wins, as in iotedgedev)."""
    out: dict[str, Any] = {}
    out.update(user_modules(manifest, file))
    out.update(system_modules(manifest, file))
    return out
