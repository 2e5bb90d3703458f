"""Deployment parsing: modules, routes, TTL and twins from a manifest; bad input names its JSON path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgegen.local.deployment import load_manifest, parse_deployment
from edgegen.local.errors import DeviceError
from tests.local.device.harness import solution_manifest
from tests.support.cli import CliRunner


def _content(repo: Path) -> dict[str, Any]:
    return solution_manifest(repo)["modulesContent"]  # type: ignore[no-any-return]


def test_repo_solution_parses(repo_root: Path) -> None:
    d = parse_deployment(_content(repo_root))
    assert sorted(d.modules) == ["inference", "monitor", "sensor"]
    sensor = d.modules["sensor"]
    assert sensor.image == "localhost:5000/sensor:0.1.0-amd64" and sensor.startup_order == 2
    assert sensor.env["SEND_INTERVAL"] == "1" and sensor.restart_policy == "always"
    assert d.store_ttl_secs == 7200 and d.hub_schema_version == "1.2" and "sensorToInference" in d.routes
    assert d.twins["sensor"] == {"SendData": True, "SendInterval": 1}
    assert '"ExposedPorts"' in d.modules["inference"].create_options


@pytest.mark.parametrize(("edit", "path"), [
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"].update(restartPolicy="sometimes"),
     "modules.sensor.restartPolicy"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"].update(startupOrder=-1),
     "modules.sensor.startupOrder"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["settings"].update(
        image="${MODULES.sensor}"), "modules.sensor.settings.image"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["env"].update(BAD={"v": 1}),
     "modules.sensor.env.BAD"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["settings"].update(
        createOptions='{"HostConfig": '), "modules.sensor.settings.createOptions"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["settings"].update(
        createOptions="[1]"), "modules.sensor.settings.createOptions"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["modules"]["sensor"].update(imagePullPolicy="always"),
     "modules.sensor.imagePullPolicy"),
    (lambda mc: mc["$edgeAgent"]["properties.desired"]["runtime"]["settings"].update(
        registryCredentials={"r": {"address": "a.io", "username": "u"}}),
     "runtime.settings.registryCredentials.r"),
    (lambda mc: mc.pop("$edgeHub"), "modulesContent.$edgeHub.properties.desired"),
    (lambda mc: mc["$edgeHub"]["properties.desired"]["storeAndForwardConfiguration"].update(timeToLiveSecs="x"),
     "storeAndForwardConfiguration.timeToLiveSecs"),
])
def test_bad_deployments_name_the_json_path(repo_root: Path, edit: Any, path: str) -> None:
    mc = _content(repo_root)
    edit(mc)
    with pytest.raises(DeviceError) as err:
        parse_deployment(mc, "m.json")
    assert path in err.value.render() and "m.json" in err.value.render()


def test_pull_policy_credentials_and_create_options_chunks(repo_root: Path) -> None:
    mc = _content(repo_root)
    agent = mc["$edgeAgent"]["properties.desired"]
    agent["runtime"]["settings"]["registryCredentials"] = {
        "reg": {"address": "127.0.0.1:5999", "username": "u", "password": "p@ss"}}
    sensor = agent["modules"]["sensor"]
    sensor["imagePullPolicy"] = "never"
    sensor["settings"]["createOptions"] = '{"HostConfig": {"Mem'
    sensor["settings"]["createOptions01"] = 'ory": 67108864}}'
    d = parse_deployment(mc)
    assert d.modules["sensor"].image_pull_policy == "never"
    assert d.modules["monitor"].image_pull_policy == "on-create"
    assert d.modules["sensor"].create_options_dict() == {"HostConfig": {"Memory": 67108864}}
    assert [(c.name, c.address, c.username, c.password) for c in d.registry_credentials] == [
        ("reg", "127.0.0.1:5999", "u", "p@ss")]
    assert "p@ss" not in repr(d.registry_credentials)


def test_manifest_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"modulesContent": {,}}')
    with pytest.raises(DeviceError) as err:
        load_manifest(bad)
    assert "bad.json:1:" in err.value.render() and "^" in err.value.render()
    with pytest.raises(DeviceError) as err:
        load_manifest(tmp_path / "missing.json")
    assert "genconfig" in err.value.render()


def test_cli_reports_device_errors(tmp_path: Path, cli: CliRunner) -> None:
    r = cli(["device", "status", "--state-dir", str(tmp_path)])
    assert r.code == 1 and "no device is running" in r.err
    (tmp_path / "m.json").write_text(json.dumps({"nothing": 1}))
    r = cli(["device", "run", "--manifest", str(tmp_path / "m.json"), "--state-dir", str(tmp_path / "s")])
    assert r.code == 1 and "modulesContent" in r.err


def test_cli_run_needs_at_most_one_source(tmp_path: Path, cli: CliRunner,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # neither: the solution in the current folder is rendered first, as genconfig does; here there is none
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEPLOYMENT_CONFIG_TEMPLATE_FILE", raising=False)
    r = cli(["device", "run", "--state-dir", str(tmp_path / "s")])
    err = r.err
    assert r.code == 1 and 'template file "deployment.template.json" not found' in err
    assert "edgegen new" in err
    r = cli(["device", "run", "--manifest", "x.json", "--connection-string", "HostName=h;DeviceId=d"])
    assert r.code == 2
