"""A module scaffolded from a user's score.py and a registered model runs edgegen's inference host (amlhost): on the
process-mode device it answers module messages, HTTP /score and the ``score`` direct method as `edgegen serve` does
for the same script (azmlinfsrv's contract), and reports its models in the twin."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.scaffold import new_solution
from edgegen.local.agent import BackoffPolicy
from edgegen.local.device import DeviceConfig, module_credentials
from edgegen.models.hosts import SERVE, start_host
from edgegen.models.layout import lay_out
from edgegen.models.packaging import add_inference_module
from edgegen.models.registry import Registry, SolutionModels
from edgegen.pipeline import genconfig
from tests.local.device.harness import DeviceThread, wait_for, write_manifest
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCRIPT = '''\
import json

from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema
from modelpath import Model


def init():
    global scale
    with open(Model.get_model_path("calib"), encoding="utf-8") as fh:
        scale = json.load(fh)["scale"]


@input_schema("data", StandardPythonParameterType([1.0, 2.0]))
@output_schema(StandardPythonParameterType({"scaled": [2.0, 4.0]}))
def run(data):
    if any(x < 0 for x in data):
        raise ValueError("negative reading")
    return {"scaled": [x * scale for x in data]}
'''
# a scored body, one whose run() raises, one that is not JSON, one with the wrong parameter name
BODIES = [b'{"data": [1.5, 2, 3]}', b'{"data": [-1]}', b"not json", b'{"other": [1]}']


def _http(url: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def _solution(tmp_path: Path) -> tuple[Path, Registry, Path]:
    sol = new_solution(tmp_path / "sol", module=None)
    reg = Registry(sol / ".models")
    (tmp_path / "calib.json").write_text('{"scale": 2.0}')
    reg.register(tmp_path / "calib.json", "calib", framework="custom")
    script = tmp_path / "my_score.py"  # not score.py: the deployment names it (ENTRY_SCRIPT)
    script.write_text(SCRIPT)
    add_inference_module(sol, "scorer", registry=reg, models=["calib"], entry_script=script, environ={})
    return sol, reg, script


def _manifest(sol: Path, port: int) -> dict[str, Any]:
    manifest = genconfig(cwd=sol, write=False, validate=False, environ={}, models=SolutionModels(sol, {})).manifest
    mc = manifest["modulesContent"]
    modules = mc["$edgeAgent"]["properties.desired"]["modules"]
    scorer = modules["scorer"]
    assert scorer["env"]["ENTRY_SCRIPT"] == {"value": "my_score.py"}
    scorer["env"].update({"SCORING_PORT": {"value": str(port)}, "REPORT_INTERVAL": {"value": "0.5"}})
    # the test's own SDK client runs as module "feeder" (stopped: the agent starts nothing for it)
    modules["feeder"] = {"type": "docker", "status": "stopped", "restartPolicy": "never",
                         "settings": {"image": scorer["settings"]["image"], "createOptions": "{}"}}
    mc["$edgeHub"]["properties.desired"]["routes"] = {
        "feed": 'FROM /messages/modules/feeder/outputs/* INTO BrokeredEndpoint("/modules/scorer/inputs/input1")',
        "up": "FROM /messages/modules/scorer/outputs/* INTO $upstream"}
    return manifest


def test_scaffolded_module_answers_like_edgegen_serve(tmp_path: Path) -> None:
    from azure.iot.device import IoTHubModuleClient, Message

    sol, reg, _ = _solution(tmp_path)
    folder = sol / "modules" / "scorer"
    # `edgegen serve` on the same script with the same model layout: the reference
    env = lay_out(reg, [reg.get("calib").pinned()], tmp_path / "serve-app")
    serve_port = free_port()
    with start_host(SERVE, folder / "my_score.py", Path(env["AZUREML_MODEL_DIR"]), "127.0.0.1", serve_port,
                    tmp_path / "serve.log", env) as host:
        expected = [_http(host.url + "/score", body) for body in BODIES]
        expected_swagger = json.loads(_http(host.url + "/swagger.json")[2])
    assert [e[0] for e in expected] == [200, 500, 400, 400], expected  # the contract, not our guess: see below
    assert json.loads(expected[0][2]) == {"scaled": [3.0, 4.0, 6.0]}

    port = free_port()
    manifest = write_manifest(tmp_path / "deployment.json", _manifest(sol, port))
    config = DeviceConfig(state_dir=tmp_path / "state", manifest=manifest, solution_dir=sol,
                          share_site_packages=True, venv_dir=tmp_path / "venvs", https_port=None,
                          backoff=BackoffPolicy(unit_secs=0.5), watch_interval=0.3)
    with DeviceThread(config) as dev:
        assert dev.device is not None
        reported = wait_for(lambda: dev.reported("scorer").get("inference", {}).get("status") == "running"
                            and dev.reported("scorer")["inference"], 180, "the scaffolded module running")
        # the models in the twin, verified against the registry's digest
        [model] = reported["models"]
        assert (model["name"], model["version"], model["sha256"], model["verified"]) == (
            "calib", 1, reg.get("calib").sha256, True)
        assert (reported["entryScript"], reported["scriptKind"]) == ("my_score.py", "inference_schema")
        # HTTP /score: the same statuses, content types and bodies as `edgegen serve`
        url = f"http://127.0.0.1:{port}"
        assert [_http(url + "/score", body) for body in BODIES] == expected
        assert json.loads(_http(url + "/swagger.json")[2]) == expected_swagger
        # the direct method `score`: the reply's status, the body as payload
        for body, (status, _, answer) in zip(BODIES, expected, strict=True):
            payload: Any = json.loads(body) if body.startswith(b"{") else body.decode()
            got = dev.run(lambda p=payload: dev.device.invoke_module_method("scorer", "score", p))  # type: ignore
            assert got[0] == status, (body, got)
            if status == 200:
                assert got[1] == json.loads(answer)
        # module messages: scored bodies on output1, the failures on errors with the same status
        cred = module_credentials(config.state_dir, "feeder")
        client = IoTHubModuleClient.create_from_connection_string(
            cred["EdgeHubConnectionString"], server_verification_cert=Path(cred["EdgeModuleCACertificateFile"])
            .read_text(), connection_retry=False)
        client.connect()
        try:
            for i, body in enumerate(BODIES):
                msg = Message(body, message_id=f"m{i}", content_encoding="utf-8", content_type="application/json")
                client.send_message_to_output(msg, "out")
        finally:
            client.shutdown()
        events = wait_for(lambda: len(e := [x["event"] for x in dev.upstream()]) >= len(BODIES) and e, 60,
                          "every message scored or failed")
    by_id = {e["properties"]["system"]["correlationId"]: e for e in events}
    assert sorted(by_id) == [f"m{i}" for i in range(len(BODIES))]
    for i, (status, _, answer) in enumerate(expected):
        event = by_id[f"m{i}"]
        if status == 200:
            assert event["properties"]["system"]["outputName"] == "output1"
            assert event["payload"] == json.loads(answer), event
        else:  # the failure report carries the reply's status, the input, and the reason serve answered
            assert event["properties"]["system"]["outputName"] == "errors"
            report = event["payload"]
            assert (report["status"], report["input"]) == (status, BODIES[i].decode()), event
            if status == 500:  # azmlinfsrv hides the exception from HTTP callers; the errors output names it
                assert (report["error"], report["message"]) == ("ValueError", "negative reading"), report
            else:
                assert report["message"] in answer.decode(), (report, answer)
