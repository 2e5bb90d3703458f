"""edgegen new / add as a library: files, .env documentation, template edits, and runnable module skeletons."""

from __future__ import annotations

import base64
import json
import os
import py_compile
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgegen.generator.errors import ScaffoldError
from edgegen.generator.scaffold import MODULE_TEMPLATES, add_module, new_solution
from edgegen.pipeline import genconfig

MODULE_FILES = {"module.json", "Dockerfile.amd64", "Dockerfile.amd64.debug", "Dockerfile.arm64v8",
                "Dockerfile.arm32v7", "main.py", "requirements.txt"}
DOCUMENTED = ["IOTHUB_CONNECTION_STRING", "DEVICE_CONNECTION_STRING", "CONTAINER_REGISTRY_SERVER",
              "CONTAINER_REGISTRY_USERNAME", "CONTAINER_REGISTRY_PASSWORD", "CONTAINER_REGISTRY_SERVER_2",
              "EDGE_RUNTIME_VERSION", "EDGEAGENT_SCHEMA_VERSION", "EDGEHUB_SCHEMA_VERSION", "BYPASS_MODULES",
              "CONTAINER_TAG", "CONFIG_OUTPUT_DIR", "DEPLOYMENT_CONFIG_TEMPLATE_FILE",
              "DEPLOYMENT_CONFIG_DEBUG_TEMPLATE_FILE", "DEFAULT_PLATFORM", "MODULES_PATH", "DEPLOYMENT_CONFIG_FILE"]


def test_new_solution_layout_and_documented_env(tmp_path: Path) -> None:
    sol = new_solution(tmp_path / "s", module=None, runtime_version="1.4")
    assert sorted(p.name for p in sol.iterdir()) == [".env", ".gitignore", "deployment.debug.template.json",
                                                      "deployment.template.json", "modules"]
    env = (sol / ".env").read_text()
    lines = env.splitlines()
    for name in DOCUMENTED:
        idx = next(i for i, ln in enumerate(lines) if re.match(rf"#?\s*{name}=", ln))
        assert lines[idx - 1].lstrip().startswith("#"), f"{name} has no comment above it"
    assert 'EDGE_RUNTIME_VERSION="1.4"' in env and 'EDGEHUB_SCHEMA_VERSION="1.2"' in env
    ignored = (sol / ".gitignore").read_text().splitlines()
    assert {".env", "config/", "manifests/"} <= set(ignored)
    res = genconfig(cwd=sol, environ={}, fail_on_validation_error=True)
    assert res.output_path == Path("config") / "deployment.amd64.json"
    hub = res.manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["systemModules"]["edgeHub"]
    assert hub["settings"]["image"] == "mcr.microsoft.com/azureiotedge-hub:1.4"


def test_new_refuses_a_non_empty_folder_and_accepts_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ScaffoldError, match="Directory is not empty"):
        new_solution(tmp_path / "full")
    (tmp_path / "empty").mkdir()
    sol = new_solution(tmp_path / "empty", module="filtermodule", template="python")
    assert {p.name for p in (sol / "modules" / "filtermodule").iterdir()} == MODULE_FILES
    with pytest.raises(ScaffoldError, match="runtime version"):
        new_solution(tmp_path / "v", runtime_version="9.9")


@pytest.mark.parametrize("template", MODULE_TEMPLATES)
def test_add_module_files(tmp_path: Path, template: str) -> None:
    sol = new_solution(tmp_path / "s", module=None)
    res = add_module(sol, "My_Mod1", template, environ={})
    folder = sol / "modules" / "My_Mod1"
    # an inference module gets the host of modules/inference (amlhost, the same as `edgegen serve`) and a score.py
    host = {"outputs.py", "modelpath.py", "score.py", "amlhost", "wheels"} if template == "inference" else set()
    assert res.module_dir == folder and {p.name for p in folder.iterdir()} == MODULE_FILES | host
    mj = json.loads((folder / "module.json").read_text())
    assert mj["image"]["repository"] == "${CONTAINER_REGISTRY_SERVER}/my_mod1"
    assert set(mj["image"]["tag"]["platforms"]) == {"amd64", "amd64.debug", "arm32v7", "arm64v8"}
    for platform in ("amd64", "arm32v7", "arm64v8"):
        assert re.search(rf"^FROM ({platform}/)?python:3\.11", (folder / f"Dockerfile.{platform}").read_text(), re.M)
    assert "debugpy" in (folder / "Dockerfile.amd64.debug").read_text()
    assert "azure-iot-device" in (folder / "requirements.txt").read_text()
    for script in folder.rglob("*.py"):
        py_compile.compile(str(script), doraise=True)
    tpl = json.loads((sol / "deployment.template.json").read_text())["modulesContent"]
    assert tpl["$edgeAgent"]["properties.desired"]["modules"]["My_Mod1"]["settings"]["image"] == "${MODULES.My_Mod1}"
    assert tpl["$edgeHub"]["properties.desired"]["routes"]["My_Mod1ToIoTHub"] == (
        "FROM /messages/modules/My_Mod1/outputs/* INTO $upstream")
    dbg = json.loads((sol / "deployment.debug.template.json").read_text())["modulesContent"]
    assert dbg["$edgeAgent"]["properties.desired"]["modules"]["My_Mod1"]["settings"]["image"] == (
        "${MODULES.My_Mod1.debug}")
    res2 = genconfig(cwd=sol, environ={}, validate=False)
    image = res2.manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["My_Mod1"]
    assert image["settings"]["image"] == "localhost:5000/my_mod1:0.0.1-amd64"


def test_add_keeps_variables_and_unquoted_values_in_the_template(tmp_path: Path) -> None:
    sol = new_solution(tmp_path / "s", module=None)
    tpl = sol / "deployment.template.json"
    tpl.write_text(tpl.read_text().replace('"timeToLiveSecs": 7200', '"timeToLiveSecs": ${TTL}'))
    add_module(sol, "m1", environ={})
    text = tpl.read_text()
    assert '"timeToLiveSecs": ${TTL}' in text  # unquoted, as written
    assert "${EDGE_RUNTIME_VERSION}" in text and "${EDGEAGENT_SCHEMA_VERSION}" in text  # not expanded (iotedgedev does)
    res = genconfig(cwd=sol, environ={"TTL": "30"}, validate=False)
    assert res.manifest["modulesContent"]["$edgeHub"]["properties.desired"]["storeAndForwardConfiguration"] == {
        "timeToLiveSecs": 30}


def test_add_to_a_yaml_template_and_refuse_jinja(tmp_path: Path) -> None:
    import yaml

    sol = new_solution(tmp_path / "s", module=None)
    data = json.loads((sol / "deployment.template.json").read_text())
    (sol / "deployment.template.json").unlink()
    (sol / "deployment.debug.template.json").unlink()
    (sol / "deployment.template.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    add_module(sol, "m1", environ={"DEPLOYMENT_CONFIG_TEMPLATE_FILE": "deployment.template.yaml"})
    loaded = yaml.safe_load((sol / "deployment.template.yaml").read_text())
    assert loaded["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["m1"]["settings"]["image"] == (
        "${MODULES.m1}")
    (sol / "deployment.template.json.j2").write_text("{# jinja #}{}")
    with pytest.raises(ScaffoldError, match="Jinja2"):
        add_module(sol, "m2", environ={"DEPLOYMENT_CONFIG_TEMPLATE_FILE": "deployment.template.json.j2"})
    assert not (sol / "modules" / "m2").exists()


# --- the skeletons run: each module as a real process against Mosquitto (TLS) with the device SDK ----------


@contextmanager
def running(sol: Path, module: str, env: dict[str, str]) -> Iterator[object]:
    from tests.support.iothub_responder import run_responder
    from tests.support.mosquitto import mosquitto_path, run_mosquitto
    from tests.support.proc import stop_process

    if mosquitto_path() is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    with run_mosquitto(tls=True) as broker, run_responder(broker, "dev1", module) as hub:
        key = base64.b64encode(os.urandom(32)).decode()
        penv = {k: v for k, v in os.environ.items() if not k.startswith("IOTEDGE_")}
        penv.update(env, EdgeHubConnectionString=f"HostName=localhost;DeviceId=dev1;ModuleId={module};"
                                                 f"SharedAccessKey={key};GatewayHostName={broker.host}",
                    EdgeModuleCACertificateFile=str(broker.ca_file))
        log = sol / f"{module}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "main.py"], cwd=sol / "modules" / module, env=penv,
                                    stdout=out, stderr=subprocess.STDOUT)
            try:
                yield hub
            finally:
                stop_process(proc, grace=20, kill_wait=None)


def exchange(hub: object, input_name: str, body: str, output: str) -> object:
    """Send ``body`` to ``input_name`` until the module answers on ``output`` (it subscribes after connecting)."""
    for _ in range(20):
        hub.send_input(input_name, body)  # type: ignore[attr-defined]
        try:
            return hub.wait_output(output, 1, timeout=1.0)[0].json()  # type: ignore[attr-defined]
        except AssertionError:
            continue
    raise AssertionError(f"no message on {output} after 20 tries")


@pytest.mark.process
@pytest.mark.integration
def test_generated_modules_run(tmp_path: Path) -> None:
    sol = new_solution(tmp_path / "s", module=None)
    for name in ("sensor", "inference", "monitor", "python"):
        add_module(sol, name, name, environ={})
    with running(sol, "sensor", {"SEND_INTERVAL": "0.1", "MESSAGE_COUNT": "2"}) as hub:
        msgs = hub.wait_output("temperatureOutput", 2)  # type: ignore[attr-defined]
        assert set(msgs[0].json()["machine"]) == {"temperature", "pressure"}
    with running(sol, "inference", {}) as hub:
        scored = exchange(hub, "input1", json.dumps({"machine": {"temperature": 30.5}}), "output1")
        assert scored == {"temperature": 30.5, "anomaly": True, "threshold": 25.0, "timeCreated": None}
        hub.send_input("input1", "not json")  # type: ignore[attr-defined]
        assert "error" in hub.wait_output("errors", 1)[0].json()  # type: ignore[attr-defined]
    with running(sol, "monitor", {"SUMMARY_EVERY": "1"}) as hub:
        summary = exchange(hub, "scored", json.dumps({"anomaly": False}), "upstream")
        assert summary["scored"] >= 1 and summary["anomalies"] == 0  # type: ignore[index]
    with running(sol, "python", {}) as hub:
        assert exchange(hub, "input1", '{"x": 1}', "output1") == {"x": 1}


def test_add_inference_and_monitor_route_the_inputs_their_code_reads(tmp_path: Path) -> None:
    sol = new_solution(tmp_path / "sol")  # tempSensor (the simulated sensor) -> filtermodule -> $upstream
    inference = add_module(sol, "scorer", "inference")
    monitor = add_module(sol, "watch", "monitor")
    assert inference.unfed == [] and monitor.unfed == []
    for name in ("deployment.template.json", "deployment.debug.template.json"):
        routes = json.loads((sol / name).read_text())["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]
        assert routes["tempSensorToscorer"] == ('FROM /messages/modules/tempSensor/outputs/temperatureOutput INTO '
                                                'BrokeredEndpoint("/modules/scorer/inputs/input1")')
        assert routes["scorerTowatch_scored"].endswith('outputs/output1 INTO BrokeredEndpoint("/modules/watch/inputs/'
                                                       'scored")')
        assert routes["scorerTowatch_errors"].endswith('outputs/errors INTO BrokeredEndpoint("/modules/watch/inputs/'
                                                       'errors")')
    res = genconfig(cwd=sol, environ={})
    assert not [f for f in res.findings if f.severity != "info"], res.findings


def test_add_monitor_without_a_sender_says_what_is_unrouted(tmp_path: Path) -> None:
    sol = new_solution(tmp_path / "sol", module=None)
    result = add_module(sol, "watch", "monitor")
    assert result.routes == [] and result.unfed == ["scored", "errors"]
