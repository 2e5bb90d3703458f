"""Identity isolation through the local edge hub with the real SDK: methods and desired patches reach only their
module; a wrong key or another module's identity is refused."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from edgegen.local.agent import BackoffPolicy
from edgegen.local.device import DeviceConfig, module_credentials
from edgegen.local.mqtt.topics import Identity
from tests.local.device.harness import DeviceThread, solution_manifest, wait_for, write_manifest

pytestmark = pytest.mark.integration


def _manifest(repo: Path, a_desired: dict[str, Any]) -> dict[str, Any]:
    m = copy.deepcopy(solution_manifest(repo))
    mc = m["modulesContent"]
    image = mc["$edgeAgent"]["properties.desired"]["modules"]["monitor"]["settings"]["image"]
    stopped = {"type": "docker", "status": "stopped", "restartPolicy": "never",
               "settings": {"image": image, "createOptions": "{}"}}
    mc["$edgeAgent"]["properties.desired"]["modules"] = {"a": stopped, "b": copy.deepcopy(stopped)}
    mc["$edgeHub"]["properties.desired"]["routes"] = {
        "aToB": {"route": 'FROM /messages/modules/a/outputs/* INTO BrokeredEndpoint("/modules/b/inputs/in")',
                 "priority": 0, "timeToLiveSecs": 60}}
    for key in ("sensor", "monitor", "inference"):
        mc.pop(key, None)
    mc["a"] = {"properties.desired": a_desired}
    mc["b"] = {"properties.desired": {"onlyB": True}}
    return m


class Recorder:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.methods: list[tuple[str, Any]] = []
        self.patches: list[dict[str, Any]] = []
        self.inputs: list[tuple[str | None, bytes, dict[str, str]]] = []
        self.event = threading.Event()

    def on_method(self, request: Any) -> None:
        from azure.iot.device import MethodResponse

        self.methods.append((request.name, request.payload))
        response = MethodResponse.create_from_method_request(request, 200, {"echo": request.payload})
        self.client.send_method_response(response)
        self.event.set()

    def on_patch(self, patch: dict[str, Any]) -> None:
        self.patches.append(patch)
        self.event.set()

    def on_input(self, message: Any) -> None:
        self.inputs.append((message.input_name, message.data, dict(message.custom_properties)))
        self.event.set()


def _client(cs: str, ca: str) -> Any:
    from azure.iot.device import IoTHubModuleClient

    return IoTHubModuleClient.create_from_connection_string(cs, server_verification_cert=ca, connection_retry=False,
                                                            keep_alive=30)


def test_methods_patches_and_inputs_reach_only_their_module(tmp_path: Path, repo_root: Path,
                                                            venv_cache: Path) -> None:
    manifest = write_manifest(tmp_path / "deployment.json", _manifest(repo_root, {"x": 1}))
    config = DeviceConfig(state_dir=tmp_path / "state", manifest=manifest, solution_dir=repo_root,
                          share_site_packages=True, venv_dir=venv_cache, backoff=BackoffPolicy(unit_secs=0.5),
                          control_api=False, watch_interval=0.3)
    with DeviceThread(config) as dev:
        assert dev.device is not None
        device = dev.device
        cred_a, cred_b = module_credentials(config.state_dir, "a"), module_credentials(config.state_dir, "b")
        ca = Path(cred_a["EdgeModuleCACertificateFile"]).read_text()
        a, b = Recorder(_client(cred_a["EdgeHubConnectionString"], ca)), Recorder(
            _client(cred_b["EdgeHubConnectionString"], ca))
        try:
            for r in (a, b):
                r.client.connect()
                r.client.on_method_request_received = r.on_method
                r.client.on_twin_desired_properties_patch_received = r.on_patch
                r.client.on_message_received = r.on_input
            twin_a, twin_b = a.client.get_twin(), b.client.get_twin()
            assert twin_a["desired"]["x"] == 1 and "onlyB" not in twin_a["desired"]
            assert twin_b["desired"]["onlyB"] is True and "x" not in twin_b["desired"]

            status, payload = dev.run(lambda: device.gateway.invoke_method(Identity("edgegen-device", "a"), "ping",
                                                                            {"n": 1}, 10))
            assert (status, payload) == (200, {"echo": {"n": 1}})
            assert a.methods == [("ping", {"n": 1})] and b.methods == []

            write_manifest(manifest, _manifest(repo_root, {"x": 2}))  # a redeploy changes a's desired only
            wait_for(lambda: a.patches, 15, "a desired patch")
            assert a.patches[0]["x"] == 2 and a.patches[0]["$version"] == twin_a["desired"]["$version"] + 1
            assert b.patches == []

            a.client.send_message_to_output(_message("hello"), "out1")  # routed a → b/in
            wait_for(lambda: b.inputs, 15, "b input")
            name, data, props = b.inputs[0]
            assert (name, data, props["$.cmid"], props["$.cdid"], props["k"]) == ("in", b"hello", "a",
                                                                                  "edgegen-device", "v")
            assert a.inputs == [] and a.methods == [("ping", {"n": 1})] and b.methods == []
            reported_v = a.client.patch_twin_reported_properties({"mine": True})
            assert reported_v is None or isinstance(reported_v, int)
            assert dev.reported("a")["mine"] is True and "mine" not in dev.reported("b")
        finally:
            for r in (a, b):
                r.client.shutdown()

        wrong_key = cred_a["EdgeHubConnectionString"].replace(cred_a["EdgeHubConnectionString"].split(
            "SharedAccessKey=")[1].split(";")[0], "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXkxMjM0NTY=")
        key_a = cred_a["EdgeHubConnectionString"].split("SharedAccessKey=")[1].split(";")[0]
        as_b_with_a_key = cred_b["EdgeHubConnectionString"].replace(
            cred_b["EdgeHubConnectionString"].split("SharedAccessKey=")[1].split(";")[0], key_a)
        for cs in (wrong_key, as_b_with_a_key):
            intruder = _client(cs, ca)
            try:
                with pytest.raises(Exception) as err:
                    intruder.connect()
                assert "auth" in type(err.value).__name__.lower() or "credential" in type(err.value).__name__.lower() \
                    or "connect" in type(err.value).__name__.lower(), repr(err.value)
            finally:
                intruder.shutdown()
        connected = dev.call(lambda: sorted(device.hub.connected))
        assert connected == []
        assert json.loads((config.state_dir / "identities.json").read_text())["modules"].keys() == {"a", "b"}


def _message(text: str) -> Any:
    from azure.iot.device import Message

    msg = Message(text)
    msg.custom_properties["k"] = "v"
    return msg
