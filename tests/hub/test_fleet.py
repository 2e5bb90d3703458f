"""fleet.yaml: groups and per-device overrides rendered, validated, and deployed to the stand-in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgegen.hub.errors import HubClientError
from edgegen.hub.fleet import load_fleet, render_fleet, write_fleet
from tests.support.cli import CliRunner

REPO = Path(__file__).resolve().parents[2]

FLEET = """\
variables:
  SEND_INTERVAL: "1"
groups:
  prod:
    targetCondition: "tags.environment='prod'"
    priority: 10
    labels: {team: vision}
    variables: {SEND_INTERVAL: "5"}
    devices:
      cam-001: {variables: {SEND_INTERVAL: "2"}}
      cam-002: {}
  dev:
    devices: [lab-1, lab-2]
"""


@pytest.fixture
def solution(tmp_path: Path) -> Path:
    sol = tmp_path / "sol"
    sol.mkdir()
    template = (REPO / "deployment.template.json").read_text()
    assert '"SendInterval": 1' in template
    template = template.replace('"SendInterval": 1', '"SendInterval": ${SEND_INTERVAL}')
    (sol / "deployment.template.json").write_text(template)
    shutil.copytree(REPO / ".models", sol / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    for mj in (REPO / "modules").glob("*/module.json"):
        (sol / "modules" / mj.parent.name).mkdir(parents=True)
        shutil.copy(mj, sol / "modules" / mj.parent.name / "module.json")
    (sol / "fleet.yaml").write_text(FLEET)
    return sol


def interval(manifest: dict) -> int:
    return manifest["modulesContent"]["sensor"]["properties.desired"]["SendInterval"]


def test_render_groups_and_device_overrides(solution: Path) -> None:
    plan = render_fleet(solution / "fleet.yaml", environ={})
    by_name = {d.name: d for d in plan.deployments}
    assert sorted(by_name) == ["dev", "prod", "prod-cam-001"]
    assert interval(by_name["prod"].manifest) == 5 and interval(by_name["prod-cam-001"].manifest) == 2
    assert interval(by_name["dev"].manifest) == 1
    assert by_name["prod-cam-001"].target_condition == "deviceId='cam-001'"
    assert by_name["prod-cam-001"].priority == 11
    assert by_name["dev"].target_condition == "tags.fleetGroup='dev'"
    assert plan.device_deployment == {"cam-001": "prod-cam-001", "cam-002": "prod", "lab-1": "dev", "lab-2": "dev"}
    assert plan.renders == 3 and plan.validations == 3 and not plan.errors()
    written = write_fleet(plan, solution / "manifests" / "fleet")
    assert {p.name for p in written} == {"prod.json", "dev.json", "prod-cam-001.json", "fleet-index.json"}
    index = json.loads((solution / "manifests" / "fleet" / "fleet-index.json").read_text())
    assert index["devices"]["cam-002"] == "prod"


def test_bad_fleet_files_say_where(solution: Path) -> None:
    (solution / "fleet.yaml").write_text("groups:\n  prod:\n    priority: 1\n    targets: x\n")
    with pytest.raises(HubClientError) as exc:
        load_fleet(solution / "fleet.yaml")
    assert "unknown key 'targets'" in exc.value.message and exc.value.location.line == 4
    (solution / "fleet.yaml").write_text("groups:\n  prod:\n    priority: -1\n")
    with pytest.raises(HubClientError) as exc:
        load_fleet(solution / "fleet.yaml")
    assert "priority" in exc.value.message and exc.value.location.line == 3


def test_validation_errors_are_found_per_deployment(solution: Path) -> None:
    template = solution / "deployment.template.json"
    template.write_text(template.read_text().replace('"restartPolicy": "always",\n            "startupOrder": 2',
                                                     '"restartPolicy": "${POLICY}",\n            "startupOrder": 2'))
    (solution / "fleet.yaml").write_text(FLEET.replace("labels: {team: vision}", "labels: {team: vision}\n"
                                                       "    variables: {SEND_INTERVAL: '5', POLICY: sometimes}")
                                         .replace('    variables: {SEND_INTERVAL: "5"}\n', "")
                                         .replace("variables:\n  SEND_INTERVAL", "variables:\n  POLICY: always\n"
                                                  "  SEND_INTERVAL"))
    plan = render_fleet(solution / "fleet.yaml", environ={})
    assert {name for name, _ in plan.errors()} == {"prod", "prod-cam-001"}


@pytest.mark.integration
def test_deploy_fleet_to_the_stand_in(solution: Path, hub, cli: CliRunner, monkeypatch) -> None:
    from edgegen.hub.client import HubClient
    from edgegen.hub.connection import resolve_hub

    monkeypatch.chdir(solution)
    state = str(hub.state_dir)
    client = HubClient(resolve_hub(None, state_dir=hub.state_dir, environ={}))
    for device, tags in (("cam-001", {"environment": "prod"}), ("cam-002", {"environment": "prod"}),
                         ("lab-1", {"fleetGroup": "dev"})):
        client.create_device(device, edge=True)
        client.set_tags(device, tags)
    r = cli(["deploy", "--fleet", "fleet.yaml", "--state-dir", state, "--output", "json"])
    assert r.code == 0
    assert [d["action"] for d in r.json()] == ["created"] * 3
    for device in ("cam-001", "cam-002", "lab-1"):  # the device side makes its module identities
        hub.ensure_module(device, "sensor")
    assert client.module_twin("cam-001", "sensor")["desired"]["SendInterval"] == 2
    assert client.module_twin("cam-002", "sensor")["desired"]["SendInterval"] == 5
    assert client.module_twin("lab-1", "sensor")["desired"]["SendInterval"] == 1
    assert client.get_deployment("prod")["systemMetrics"]["targetedCount"] == 2
    # again: updates in place, content unchanged
    r = cli(["deploy", "--fleet", "fleet.yaml", "--state-dir", state, "--output", "json"])
    assert r.code == 0
    assert [d["action"] for d in r.json()] == ["updated"] * 3


def test_dry_run_renders_without_a_hub(solution: Path, cli: CliRunner, monkeypatch) -> None:
    monkeypatch.chdir(solution)
    r = cli(["deploy", "--fleet", "fleet.yaml", "--dry-run", "out", "--state-dir", str(solution / "no-hub")])
    assert r.code == 0
    assert "3 deployments for 4 listed devices" in r.out
    assert interval(json.loads((solution / "out" / "prod-cam-001.json").read_text())) == 2
