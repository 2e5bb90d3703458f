"""Reading the manifest to deploy: find it, validate it offline, take its modulesContent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgegen.common.safeload import InputError, loads_json, read_text
from edgegen.errors import Location
from edgegen.hub.errors import HubClientError

__all__ = ["DEFAULT_MANIFESTS", "LoadedManifest", "find_manifest", "load_manifest"]

DEFAULT_MANIFESTS = ("manifests/deployment.amd64.json", "config/deployment.amd64.json",
                     "manifests/deployment.json", "config/deployment.json")


@dataclass(frozen=True)
class LoadedManifest:
    path: Path
    modules_content: dict[str, Any]
    findings: list[Any]  # edgegen.generator.validation.Finding (warnings and infos that did not block)


def find_manifest(given: str | None, cwd: Path | None = None) -> Path:
    base = cwd or Path.cwd()
    if given:
        return Path(given)
    for candidate in DEFAULT_MANIFESTS:
        if (base / candidate).is_file():
            return base / candidate
    raise HubClientError("no manifest given and none found in manifests/ or config/",
                         hint="render one with 'edgegen genconfig', or pass -f path/to/deployment.json")


def _modules_content(doc: Any, path: Path) -> dict[str, Any]:
    if isinstance(doc, Mapping):
        if isinstance(doc.get("modulesContent"), Mapping):
            return dict(doc["modulesContent"])
        content = doc.get("content")
        if isinstance(content, Mapping) and isinstance(content.get("modulesContent"), Mapping):
            return dict(content["modulesContent"])
    raise HubClientError("the manifest has no modulesContent", location=Location(file=str(path)),
                         hint='a manifest looks like {"modulesContent": {"$edgeAgent": …, "$edgeHub": …}}')


def _check_layered(content: Mapping[str, Any], path: Path) -> None:
    for module, twin in content.items():
        if not isinstance(twin, Mapping):
            raise HubClientError(f"modulesContent.{module} must be an object", location=Location(
                file=str(path), json_path=f"modulesContent.{module}"))
        for key in twin:
            if key != "properties.desired" and not key.startswith("properties.desired."):
                raise HubClientError(
                    f"unexpected key {key!r} in a layered deployment",
                    location=Location(file=str(path), json_path=f"modulesContent.{module}"),
                    hint="layered content uses 'properties.desired.<path>' keys, e.g. "
                         "'properties.desired.modules.mymodule'")


def load_manifest(path: Path, *, validate: bool = True, layered: bool = False) -> LoadedManifest:
    """Read and (unless told not to) validate; raise ValidationError when the manifest has errors."""
    from edgegen.generator.validation import ValidationError, has_errors, validate_text

    try:
        text = read_text(path, what="manifest")
    except InputError as exc:
        err = exc.as_error(HubClientError)
        if exc.kind == "read":
            err.hint = "check the path; render manifests with 'edgegen genconfig'"
        raise err from None
    findings: list[Any] = []
    if validate and not layered:
        findings = validate_text(text, file=str(path))
        if has_errors(findings):
            raise ValidationError(findings, file=str(path))
    try:
        doc = loads_json(text, file=str(path), what="the manifest")
    except InputError as exc:
        raise exc.as_error(HubClientError) from None
    content = _modules_content(doc, path)
    if layered:
        _check_layered(content, path)
    return LoadedManifest(path, content, findings)
