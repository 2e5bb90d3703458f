"""The process-mode device gives a module the same layout as its image, or refuses the deployment."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgegen.local.agent import Agent
from edgegen.local.deployment import DesiredModule
from edgegen.local.errors import DeviceError
from edgegen.local.modulecode import ModuleResolver, VenvCache, model_layout
from edgegen.local.processes import ProcessRuntime
from edgegen.models.modelpath import prepare
from edgegen.models.registry import Registry


def registry(tmp_path: Path) -> Registry:
    reg = Registry(tmp_path / ".models")
    (tmp_path / "w.bin").write_bytes(b"weights")
    reg.register(tmp_path / "w.bin", "m")
    return reg


def test_layout_for_a_module(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    env = model_layout("scorer", {"EDGEGEN_MODELS": reg.pin("m")}, tmp_path, tmp_path / "state" / "scorer")
    assert env["AZUREML_MODEL_DIR"] == str(tmp_path / "state" / "scorer" / "azureml-models" / "m" / "1")
    assert Path(env["AZUREML_MODEL_DIR"], "w.bin").read_bytes() == b"weights"
    assert prepare(dict(env))[0]["verified"]  # what the module checks at start agrees
    assert model_layout("plain", {}, tmp_path, tmp_path / "state" / "plain") == {}


@pytest.mark.parametrize("value, message", [
    ("m:1@sha256:" + "0" * 64, "pins sha256"),
    ("m:2@sha256:" + "0" * 64, "no version 2"),
    ("m", "not name:version@sha256"),
])
def test_a_pin_the_registry_does_not_hold_refuses(tmp_path: Path, value: str, message: str) -> None:
    registry(tmp_path)
    with pytest.raises(DeviceError, match=message) as exc:
        model_layout("scorer", {"EDGEGEN_MODELS": value}, tmp_path, tmp_path / "state")
    assert exc.value.location is not None and "scorer.env.EDGEGEN_MODELS" in (exc.value.location.json_path or "")


def test_agent_refuses_the_whole_deployment_before_stopping_anything(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    folder = tmp_path / "modules" / "scorer"
    folder.mkdir(parents=True)
    (folder / "module.json").write_text('{"image": {"repository": "localhost:5000/scorer", "tag": {"version": "1", '
                                        '"platforms": {"amd64": "./D"}}}}')
    (folder / "main.py").write_text("import time\ntime.sleep(60)\n")
    runtime = ProcessRuntime(ModuleResolver(tmp_path), VenvCache(tmp_path / "venvs", system_site_packages=True),
                             tmp_path / "logs", base_env={})
    # what the process-mode device wires in: the image's layout under <state>/models/<module>
    agent = Agent(runtime, lambda m: {}, stage=lambda m: model_layout(m.name, m.env, tmp_path,
                                                                       tmp_path / "state" / "models" / m.name))
    image = "localhost:5000/scorer:1-amd64"
    good = {"scorer": DesiredModule(name="scorer", image=image, env={"EDGEGEN_MODELS": reg.pin("m")})}
    bad = {"scorer": DesiredModule(name="scorer", image=image, env={"EDGEGEN_MODELS": "m:1@sha256:" + "1" * 64})}

    async def main() -> None:
        assert await agent.apply(good) == ["scorer"]
        pid = agent.pid("scorer")
        assert pid is not None
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
        assert environ["AZUREML_MODEL_DIR"] == str(tmp_path / "state" / "models" / "scorer" / "azureml-models" / "m"
                                                   / "1")
        with pytest.raises(DeviceError, match="its models cannot be deployed"):
            await agent.apply(bad)
        # the running module was not stopped, and the agent still holds the deployment it runs
        assert agent.pid("scorer") == pid and agent.status()["scorer"]["runtimeStatus"] == "running"
        await agent.stop_all()

    asyncio.run(main())
