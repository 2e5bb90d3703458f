"""iotedgedev's createOptions warnings (EXPECTATIONS.md) have equivalent findings here, with the same wording."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgegen.generator.validation import Finding, validate_manifest

# EXPECTATIONS.md, test_validate_create_options_failed (deployment.manifest_invalid.json); the same createOptions
# sit in deployment.manifest_invalid_createoptions.json
IOTEDGEDEV_WARNINGS = {
    "Length of createOptions01 in module tempSensor exceeds 512",
    "Length of createOptions02 in module tempSensor exceeds 512",
    "createOptions of module csharpmodule is not a valid JSON string",
    "createOptions of module csharpfunction should be an object",
    "createOptions of module csharpfunction2 is not a valid JSON string",
}
PASSED = {"edgeHub"}  # "createOptions of module edgeHub validation passed"
SKIPPED = {"edgeAgent"}  # "No settings or createOptions property found in module edgeAgent"


def _create_option_findings(path: Path) -> list[Finding]:
    return [f for f in validate_manifest(json.loads(path.read_text())) if f.rule == "create-options"]


def _module_of(f: Finding) -> str:
    assert f.pointer is not None
    return str(f.pointer[f.pointer.index("settings") - 1])


@pytest.mark.parametrize("name", ["deployment.manifest_invalid.json", "deployment.manifest_invalid_createoptions.json"])
def test_same_create_options_warnings_as_iotedgedev(conformance_dir: Path, name: str) -> None:
    findings = _create_option_findings(conformance_dir / "iotedgedev/assets" / name)
    ours = {re.split(r" \(|: ", f.message)[0] for f in findings}
    assert ours >= IOTEDGEDEV_WARNINGS
    extra = [f for f in findings if re.split(r" \(|: ", f.message)[0] not in IOTEDGEDEV_WARNINGS]
    # beyond iotedgedev: the chunks after a gap are named, since edgeAgent never reads them
    assert extra and all("is never read" in f.message for f in extra)
    assert {(_module_of(f), f.pointer[-1]) for f in extra} == {  # type: ignore[index]
        ("csharpmodule", "createOptions03"),
        ("csharpfunction2", "createOptions03"),
        ("csharpfunction2", "createOptions04"),
    }
    assert not {_module_of(f) for f in findings} & (PASSED | SKIPPED)
    assert all(f.is_error for f in findings)


def test_invalidresult_edge_agent_empty_create_options(conformance_dir: Path) -> None:
    """template_invalidresult: iotedgedev warns "createOptions of module edgeAgent should be an object"; edgeAgent
    and the official schema accept "", so edgegen only notes it (info); csharpmodule passes."""
    text = (conformance_dir / "iotedgedev/assets/deployment.template_invalidresult.json").read_text()
    text = text.replace("${EDGEAGENT_SCHEMA_VERSION}", "1.1").replace("${EDGEHUB_SCHEMA_VERSION}", "1.2")
    manifest = json.loads(text)
    findings = [f for f in validate_manifest(manifest) if f.rule == "create-options"]
    assert [(_module_of(f), f.severity) for f in findings] == [("edgeAgent", "info")]
    assert findings[0].message.startswith("createOptions of module edgeAgent is empty")


def test_invalidresult_registry_credential_errors(conformance_dir: Path) -> None:
    """The three schema errors iotedgedev meant to assert (EXPECTATIONS.md, template_invalidresult)."""
    text = (conformance_dir / "iotedgedev/assets/deployment.template_invalidresult.json").read_text()
    text = text.replace("${EDGEAGENT_SCHEMA_VERSION}", "1.1").replace("${EDGEHUB_SCHEMA_VERSION}", "1.2")
    manifest = json.loads(text.replace("$CONTAINER_REGISTRY_PASSWORD", ""))
    base = ("modulesContent", "$edgeAgent", "properties.desired", "runtime", "settings", "registryCredentials")
    schema = {f.pointer: f.message for f in validate_manifest(manifest) if f.rule == "schema"}
    assert "'address'" in schema[(*base, "test")]
    assert "must be a string" in schema[(*base, "test", "username")]
    assert (*base, "test2", "address") in schema
