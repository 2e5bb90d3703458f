"""Route checks through edgegen.routing: syntax, targets, the lint (names, type errors, dead modules), no
duplicates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgegen.generator.validation import validate_manifest, validate_text

DATA = Path(__file__).parent / "data"
ROUTES = ("modulesContent", "$edgeHub", "properties.desired", "routes")


def _base() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "valid/valid-agent1.1-hub1.2.json").read_text())
    return data


def _routes(m: dict[str, Any]) -> dict[str, Any]:
    return m["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]  # type: ignore[no-any-return]


def test_valid_routes_give_no_route_findings() -> None:
    assert [f for f in validate_manifest(_base()) if f.rule and f.rule.startswith("route")] == []


def test_syntax_error_has_column_and_caret_hint_once() -> None:
    m = _base()
    _routes(m)["sensorToMonitor"] = "FROM /messages/modules/sensor/outputs/* WHERE INTO $upstream"
    hits = [f for f in validate_manifest(m) if f.pointer and f.pointer[:5] == (*ROUTES, "sensorToMonitor")]
    assert [f.rule for f in hits] == ["route-syntax"]  # the lint's copy of the same error is dropped
    assert "column" in hits[0].message and "^" in (hits[0].hint or "")


def test_missing_target_module_is_one_warning_with_a_case_hint() -> None:
    """edgeHub accepts a route to an absent module and iotedgedev passes it with --fail-on-validation-error
    (deployment.template.non_str_placeholder.json routes to 'filtermodule'): a warning, reported once."""
    m = _base()
    _routes(m)["sensorToMonitor"] = 'FROM /messages/* INTO BrokeredEndpoint("/modules/Monitor/inputs/in")'
    findings = validate_manifest(m)
    assert not [f for f in findings if f.is_error]
    hits = [f for f in findings if f.pointer == (*ROUTES, "sensorToMonitor")]
    assert [(f.rule, f.severity) for f in hits] == [("route-target", "warning")]
    assert "'Monitor'" in hits[0].message and "did you mean 'monitor'" in (hits[0].hint or "")


def test_condition_type_error_comes_from_the_lint() -> None:
    m = _base()
    _routes(m)["sensorToMonitor"] = (
        'FROM /messages/modules/sensor/* WHERE 3 + key1 = 4 INTO BrokeredEndpoint("/modules/monitor/inputs/in")')
    hits = [f for f in validate_manifest(m) if f.is_error]
    assert len(hits) == 1 and hits[0].rule == "route-lint"
    assert hits[0].pointer == (*ROUTES, "sensorToMonitor")


def test_lint_warnings_are_located_in_layered_deployments() -> None:
    m = _base()
    m["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["lonely"] = {
        "type": "docker", "status": "running", "restartPolicy": "always",
        "settings": {"image": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0"}}
    deployment = {"content": m}
    text = json.dumps(deployment, indent=2)
    (hit,) = [f for f in validate_text(text, file="d.json") if f.rule == "route-lint"]
    assert hit.severity == "info" and "lonely" in hit.message  # nothing says it uses messaging
    assert hit.path == "content.modulesContent.$edgeAgent.properties.desired.modules.lonely"
    assert hit.line is not None and '"lonely"' in (hit.source_line or "")


def test_layered_route_fragments_are_parsed() -> None:
    deployment = {"content": {"modulesContent": {"$edgeHub": {
        "properties.desired.routes.good": "FROM /messages/* INTO $upstream",
        "properties.desired.routes.bad": "FROM /messages/* INTO",
        "properties.desired.routes.toModule": 'FROM /messages/* INTO BrokeredEndpoint("/modules/x/inputs/i")',
    }}}}
    findings = validate_manifest(deployment)
    by_route = {f.pointer[-1]: f for f in findings if f.rule in ("route-syntax", "route-target")}  # type: ignore[index]
    assert by_route["properties.desired.routes.bad"].is_error
    # the target may come from another layer: a note, not an error
    assert by_route["properties.desired.routes.toModule"].severity == "info"
    assert "properties.desired.routes.good" not in by_route


def test_missing_target_does_not_hide_a_type_error_of_the_same_route() -> None:
    m = _base()
    _routes(m)["sensorToMonitor"] = (
        'FROM /messages/* WHERE 3 + key1 = 4 INTO BrokeredEndpoint("/modules/ghost/inputs/in")')
    hits = [(f.rule, f.severity) for f in validate_manifest(m) if f.pointer == (*ROUTES, "sensorToMonitor")]
    assert ("route-target", "warning") in hits and ("route-lint", "error") in hits
    assert len(hits) == 2


def test_a_bad_route_name_is_reported_once_by_the_lint() -> None:
    """Where the schema has no pattern for route names (data/semantic/route-name-1.0.json), the lint's rule is the
    only one that speaks."""
    m = json.loads((DATA / "semantic/route-name-1.0.json").read_text())
    hits = [f for f in validate_manifest(m) if f.pointer == (*ROUTES, "to.hub")]
    assert [(f.rule, f.severity) for f in hits] == [("route-lint", "error")]
    assert "'to.hub' may not contain" in hits[0].message
