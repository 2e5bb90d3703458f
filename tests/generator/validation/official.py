"""The reference verdicts: the official azure-iot-cli-extension schemas (tests/conformance/schemas) applied the
way azext's ``_validate_payload_schema`` does, with python-jsonschema. Test support only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, Draft7Validator

from edgegen.generator.validation import Finding

TWINS = ("$edgeAgent", "$edgeHub")
_PREFIX = {"$edgeAgent": "azure-iot-edgeagent-deployment", "$edgeHub": "azure-iot-edgehub-deployment"}


def modules_content(manifest: Mapping[str, Any]) -> tuple[tuple[str, ...], Mapping[str, Any]]:
    if isinstance(manifest.get("modulesContent"), Mapping):
        return ("modulesContent",), manifest["modulesContent"]
    content = manifest.get("content")
    if isinstance(content, Mapping) and isinstance(content.get("modulesContent"), Mapping):
        return ("content", "modulesContent"), content["modulesContent"]
    return (), {}


def official_verdicts(manifest: Mapping[str, Any], schemas_dir: Path) -> dict[str, bool | None]:
    """Per system twin: True (valid), False (invalid) or None (azext does not check it: no schema for that
    schemaVersion, or a layered twin without a full properties.desired)."""
    _, mc = modules_content(manifest)
    out: dict[str, bool | None] = {}
    for twin in TWINS:
        content = mc.get(twin)
        if not isinstance(content, Mapping) or not isinstance(content.get("properties.desired"), Mapping):
            out[twin] = None
            continue
        version = content["properties.desired"].get("schemaVersion")
        path = schemas_dir / f"{_PREFIX[twin]}-{version}.json"
        if not isinstance(version, str) or not path.is_file():
            out[twin] = None
            continue
        schema = json.loads(path.read_text())
        cls = Draft7Validator if "draft-07" in schema.get("$schema", "") else Draft4Validator
        out[twin] = cls(schema).is_valid({twin: content})
    return out


def our_verdicts(manifest: Mapping[str, Any], findings: list[Finding]) -> dict[str, bool | None]:
    """Per system twin from our findings: None when we skipped the schema (unknown schemaVersion)."""
    root, _ = modules_content(manifest)
    out: dict[str, bool | None] = {}
    for twin in TWINS:
        ptr = (*root, twin)
        mine = [f for f in findings if f.pointer is not None and f.pointer[: len(ptr)] == ptr]
        if any(f.rule == "schema-version" and f.severity == "warning" for f in mine):
            out[twin] = None
        else:
            out[twin] = not any(f.rule == "schema" and f.is_error for f in mine)
    return out
