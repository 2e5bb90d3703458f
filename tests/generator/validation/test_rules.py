"""One test per semantic rule (data/semantic/*.json, each a schema-valid manifest with one problem), plus the
finer points of each rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.validation import validate_manifest
from edgegen.generator.validation.semantic import registry_host

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())


def _load(sub: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / sub / f"{name}.json").read_text())
    return data


def _base() -> dict[str, Any]:
    return _load("valid", "valid-agent1.1-hub1.2")


def _agent(m: dict[str, Any]) -> dict[str, Any]:
    return m["modulesContent"]["$edgeAgent"]["properties.desired"]  # type: ignore[no-any-return]


def _hub(m: dict[str, Any]) -> dict[str, Any]:
    return m["modulesContent"]["$edgeHub"]["properties.desired"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(EXPECTED["semantic"]))
def test_semantic_rule(name: str) -> None:
    case = EXPECTED["semantic"][name]
    findings = validate_manifest(_load("semantic", name))
    path = tuple(case["path"])
    rule = case["rule"]
    hits = [f for f in findings if f.rule == rule and f.pointer == path]
    assert hits, f"no {rule} finding at {path}: {[(f.rule, f.path, f.message) for f in findings]}"
    assert hits[0].severity == case["severity"]
    assert hits[0].message and hits[0].hint


def test_clean_manifest_has_no_semantic_findings() -> None:
    assert validate_manifest(_base()) == []


def test_image_placeholder_names_the_placeholder() -> None:
    findings = validate_manifest(_load("semantic", "image-placeholder"))
    (hit,) = [f for f in findings if f.rule == "images"]
    assert "${MODULES.sensor}" in hit.message and "genconfig" in (hit.hint or "")


def test_empty_image_is_an_error() -> None:
    m = _base()
    _agent(m)["modules"]["monitor"]["settings"]["image"] = " "
    assert [f.message for f in validate_manifest(m) if f.rule == "images"] == ["image of module monitor is empty"]


@pytest.mark.parametrize(
    ("image", "host"),
    [
        ("mcr.microsoft.com/azureiotedge-hub:1.4", "mcr.microsoft.com"),
        ("ubuntu:22.04", "docker.io"),
        ("library/ubuntu", "docker.io"),
        ("me/app:1", "docker.io"),
        ("localhost:5000/sensor:0.1.0-amd64", "localhost:5000"),
        ("MyAcr.azurecr.io/x/y:1", "myacr.azurecr.io"),
        ("localhost/x", "localhost"),
    ],
)
def test_registry_host(image: str, host: str) -> None:
    assert registry_host(image) == host


def test_registry_credentials_match_by_host_and_ignore_public_registries() -> None:
    m = _base()
    creds = _agent(m)["runtime"]["settings"]["registryCredentials"]
    creds["myacr"]["address"] = "https://MYACR.azurecr.io/"
    _agent(m)["modules"]["monitor"]["settings"]["image"] = "ubuntu:22.04"
    assert [f for f in validate_manifest(m) if f.rule == "registry-credentials"] == []
    creds.clear()
    hits = [f for f in validate_manifest(m) if f.rule == "registry-credentials"]
    assert [f.severity for f in hits] == ["warning"]  # sensor on myacr; monitor on docker.io is fine
    assert "myacr.azurecr.io" in hits[0].message


@pytest.mark.parametrize("image", ["localhost:5000/monitor:1", "127.0.0.1:5000/m:1", "127.0.3.9/m:1",
                                   "[::1]:5000/m:1", "ghcr.io/org/m:1", "quay.io/org/m:1", "busybox:1",
                                   "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0"])
def test_no_credential_warning_for_loopback_and_public_registries(image: str) -> None:
    m = _base()
    _agent(m)["modules"]["monitor"]["settings"]["image"] = image
    assert [f for f in validate_manifest(m) if f.rule == "registry-credentials"] == []


def test_private_registry_without_credentials_is_a_warning() -> None:
    m = _base()
    _agent(m)["modules"]["monitor"]["settings"]["image"] = "other.azurecr.io/monitor:1"
    (hit,) = [f for f in validate_manifest(m) if f.rule == "registry-credentials"]
    assert hit.severity == "warning" and "other.azurecr.io" in hit.message


def test_fifty_modules_is_fine_fifty_one_is_not() -> None:
    m = _base()
    mods = _agent(m)["modules"]
    template = copy.deepcopy(mods["monitor"])
    for i in range(48):
        mods[f"m{i}"] = copy.deepcopy(template)
    assert len(mods) == 50
    assert [f for f in validate_manifest(m) if f.rule == "limits"] == []
    mods["one_more"] = template
    (hit,) = [f for f in validate_manifest(m) if f.rule == "limits"]
    assert "51 modules" in hit.message and hit.is_error


def test_twin_size_limit_counts_utf8_bytes() -> None:
    m = _base()
    desired = m["modulesContent"]["sensor"]["properties.desired"]
    desired["blob"] = "é" * 16000  # 32,000 bytes in UTF-8, plus the rest of the object
    sizes = [f for f in validate_manifest(m) if f.rule == "limits"]
    assert sizes == []
    desired["blob"] = "é" * 16400
    (hit,) = [f for f in validate_manifest(m) if f.rule == "limits"]
    assert "sensor" in hit.message and "32768" in hit.message


def test_agent_twin_size_is_checked_too() -> None:
    m = _base()
    _agent(m)["modules"]["sensor"]["env"]["BIG"] = {"value": "x" * 33000}
    (hit,) = [f for f in validate_manifest(m) if f.rule == "limits"]
    assert hit.pointer == ("modulesContent", "$edgeAgent")


def test_route_name_pattern_in_hub_1_1_is_a_schema_error_once() -> None:
    m = _base()
    routes = _hub(m)["routes"]
    routes["a#b"] = routes.pop("monitorToIoTHub")
    hits = [f for f in validate_manifest(m) if f.is_error and f.pointer and f.pointer[-1] == "a#b"]
    assert len(hits) == 1 and hits[0].rule == "schema"  # the semantic duplicate is dropped


def test_twin_for_unknown_module_and_without_desired() -> None:
    m = _base()
    m["modulesContent"]["ghost"] = {"properties": {}}
    hits = {(f.rule, f.severity) for f in validate_manifest(m) if f.pointer == ("modulesContent", "ghost")}
    assert ("twins", "warning") in hits and ("twins", "error") in hits


def test_module_twin_desired_must_be_an_object() -> None:
    m = _base()
    m["modulesContent"]["sensor"]["properties.desired"] = [1, 2]
    (hit,) = [f for f in validate_manifest(m) if f.rule == "twins"]
    assert hit.is_error and hit.pointer == ("modulesContent", "sensor", "properties.desired")


def test_unknown_schema_version_warns_and_does_not_crash() -> None:
    m = _base()
    _hub(m)["schemaVersion"] = "7.5"
    _hub(m)["routes"] = "not even an object"
    findings = validate_manifest(m)
    (warn,) = [f for f in findings if f.rule == "schema-version"]
    assert warn.severity == "warning" and "7.5" in warn.message and "1.3" in (warn.hint or "")
    assert not [f for f in findings if f.rule == "schema" and f.pointer and "$edgeHub" in f.pointer]


def test_placeholder_schema_version_says_render_first() -> None:
    m = _base()
    _agent(m)["schemaVersion"] = "${EDGEAGENT_SCHEMA_VERSION}"
    (warn,) = [f for f in validate_manifest(m) if f.rule == "schema-version"]
    assert "genconfig" in (warn.hint or "")


def test_non_string_schema_version_is_a_schema_error() -> None:
    m = _base()
    _agent(m)["schemaVersion"] = 1.1
    hits = [f for f in validate_manifest(m) if f.rule == "schema" and f.pointer and f.pointer[-1] == "schemaVersion"]
    assert hits and hits[0].is_error


def test_hub_1_3_accepts_integrity_and_rejects_a_bad_one() -> None:
    m = _base()
    _hub(m)["schemaVersion"] = "1.3"
    _hub(m)["integrity"] = {
        "header": {"version": "1", "signercert": ["MIIB..."], "intermediatecacert": ["MIIC..."]},
        "signature": {"bytes": "abc=", "algorithm": "ES256"},
    }
    assert not [f for f in validate_manifest(m) if f.rule == "schema"]
    del _hub(m)["integrity"]["signature"]["algorithm"]
    hits = [f for f in validate_manifest(m) if f.rule == "schema"]
    assert hits and hits[0].pointer[-1] == "signature"  # type: ignore[index]
    _hub(m)["schemaVersion"] = "1.2"
    _hub(m)["integrity"]["signature"]["algorithm"] = "ES256"
    hits = [f for f in validate_manifest(m) if f.rule == "schema"]
    assert [f.pointer[-1] for f in hits] == ["integrity"]  # type: ignore[index]


def test_missing_system_twins_and_non_object_manifest() -> None:
    m = _base()
    del m["modulesContent"]["$edgeHub"]
    (hit,) = [f for f in validate_manifest(m) if f.rule == "schema"]
    assert "$edgeHub is missing" in hit.message
    assert validate_manifest([1, 2])[0].rule == "structure"  # type: ignore[arg-type]
    assert "no modulesContent" in validate_manifest({"foo": 1})[0].message


def test_enum_typo_suggests_the_right_value() -> None:
    (hit,) = [f for f in validate_manifest(_load("schema", "agent-module-restartPolicy")) if f.rule == "schema"]
    assert "on-failured" in hit.message and "did you mean 'on-failure'" in (hit.hint or "")


def test_unknown_property_suggests_the_right_name() -> None:
    (hit,) = [f for f in validate_manifest(_load("schema", "agent-module-settings-unknown")) if f.rule == "schema"]
    assert "createOption" in hit.message and "createOptions" in (hit.hint or "")


def test_unrendered_create_options_hint_points_to_genconfig() -> None:
    findings = validate_manifest(_load("schema", "agent-module-createOptions-object"))
    (hit,) = [f for f in findings if f.rule == "schema"]
    assert "genconfig" in (hit.hint or "")
    assert not [f for f in findings if f.rule == "create-options"]  # not double-reported


def test_placeholders_left_in_values_are_reported_once_each() -> None:
    m = _base()
    agent = _agent(m)
    agent["runtime"]["settings"]["registryCredentials"] = {"acr": {
        "username": "$CONTAINER_REGISTRY_USERNAME", "password": "${CONTAINER_REGISTRY_PASSWORD}",
        "address": "myacr.azurecr.io"}}
    agent["modules"]["monitor"]["env"] = {"LEVEL": {"value": "${LOG_LEVEL}"}, "SHELL_TEXT": {"value": "echo $home"},
                                          "PRICE": {"value": "costs $5"}}
    # a placeholder cut in two by the 512-character chunking of createOptions
    long_env = "X" * 505
    options = json.dumps({"Env": [long_env + "${SECRET_KEY}"]})
    settings = agent["modules"]["monitor"]["settings"]
    settings["createOptions"], settings["createOptions01"] = options[:512], options[512:]
    hits = {f.path.rsplit(".", 1)[-1]: f for f in validate_manifest(m) if f.rule == "placeholders"}
    assert set(hits) == {"username", "password", "value", "createOptions"}, hits
    assert "$CONTAINER_REGISTRY_USERNAME" in hits["username"].message and hits["username"].severity == "warning"
    assert "${SECRET_KEY}" in hits["createOptions"].message
    # routes and system names are not placeholders
    _hub(m)["routes"]["x"] = "FROM /messages/* WHERE $connectionModuleId = 'a' INTO $upstream"
    assert {f.path.rsplit(".", 1)[-1] for f in validate_manifest(m) if f.rule == "placeholders"} == set(hits)


def test_empty_create_options_is_only_a_note() -> None:
    m = _base()
    _agent(m)["systemModules"]["edgeAgent"]["settings"]["createOptions"] = ""
    (hit,) = [f for f in validate_manifest(m) if f.rule == "create-options"]
    assert hit.severity == "info" and "edgeAgent reads it as {}" in hit.message
