"""edgegen deploy as a library call (edgegen.hub.deploy): which requests are refused, what a dry run returns, and
that errors reach the caller with their own type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import pytest

from edgegen.generator.errors import GeneratorError
from edgegen.hub.deploy import DeployRequest, ManifestRejected, deploy
from edgegen.hub.fleet import render_fleet
from tests.hub.test_fleet import solution  # noqa: F401  (the fixture)

DATA = Path(__file__).parent / "data"


def no_hub() -> NoReturn:
    raise AssertionError("the hub client must not be made")


@pytest.mark.parametrize(("request_", "problem"), [
    (DeployRequest(), "give exactly one of -d/--device, --name or --fleet"),
    (DeployRequest(device_id="d", name="n", target_condition="true"), "give exactly one"),
    (DeployRequest(device_id="d", dry_run=Path("out")), "--dry-run goes with --fleet"),
    (DeployRequest(name="n"), "--name needs --target-condition"),
    (DeployRequest(device_id="d", layered=True), "--layered applies to at-scale deployments"),
    (DeployRequest(device_id="d"), None),
    (DeployRequest(fleet=Path("fleet.yaml"), dry_run=Path("out")), None),
])
def test_refused_combinations(request_: DeployRequest, problem: str | None) -> None:
    got = request_.problem()
    assert got == problem if problem is None else got is not None and got.startswith(problem)
    if problem is not None:
        with pytest.raises(ValueError, match="^" + problem.split(" ")[0]):
            deploy(request_, no_hub)


def test_an_invalid_manifest_is_rejected_with_its_findings_before_any_hub_call(tmp_path: Path) -> None:
    doc = json.loads((DATA / "deployment.json").read_text())
    doc["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["restartPolicy"] = "sometimes"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, indent=2))
    seen: list[Any] = []
    with pytest.raises(ManifestRejected) as exc:
        deploy(DeployRequest(device_id="edge1", manifest=str(bad)), no_hub, on_findings=seen.append)
    assert any("restartPolicy" in f.path for f in exc.value.findings) and seen == []
    assert "nothing was deployed" in exc.value.message


def test_a_fleet_dry_run_writes_and_returns_data(solution: Path) -> None:  # noqa: F811
    out = solution / "out"
    outcome = deploy(DeployRequest(fleet=solution / "fleet.yaml", dry_run=out), no_hub, cwd=solution)
    assert outcome.kind == "dry-run" and outcome.error is None and outcome.findings == []
    assert outcome.data["deployments"] == ["prod", "prod-cam-001", "dev"] and outcome.data["devices"] == 4
    assert sorted(p.name for p in out.iterdir()) == ["dev.json", "fleet-index.json", "prod-cam-001.json", "prod.json"]
    json.dumps(outcome.data)  # what --output json prints


def test_a_render_error_in_a_fleet_keeps_its_type_and_says_where(solution: Path) -> None:  # noqa: F811
    fleet = solution / "fleet.yaml"
    fleet.write_text(fleet.read_text().replace('variables:\n  SEND_INTERVAL: "1"\n', ""))  # dev has no value now
    with pytest.raises(GeneratorError) as exc:
        render_fleet(fleet, environ={})
    assert "SEND_INTERVAL" in exc.value.render()
    assert exc.value.notes == ["while rendering fleet.yaml: group dev"]
    assert exc.value.location is not None and exc.value.location.file == "deployment.template.json"
