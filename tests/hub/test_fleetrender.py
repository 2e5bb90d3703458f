"""FleetRenderer gives exactly genconfig's manifests (and errors) while reading the solution's files once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.errors import GeneratorError
from edgegen.generator.solution import load_env
from edgegen.hub.fleetrender import FleetRenderer
from edgegen.models.registry import SolutionModels
from edgegen.pipeline import genconfig

REPO = Path(__file__).resolve().parents[2]


def _genconfig(solution: Path, **kwargs: Any) -> Any:
    return genconfig(cwd=solution, models=SolutionModels(solution), **kwargs)


@pytest.fixture
def solution(tmp_path: Path) -> Path:
    sol = tmp_path / "sol"
    sol.mkdir()
    template = (REPO / "deployment.template.json").read_text()
    template = template.replace('"SendInterval": 1', '"SendInterval": ${SEND_INTERVAL}')
    (sol / "deployment.template.json").write_text(template)
    shutil.copytree(REPO / ".models", sol / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    for mj in (REPO / "modules").glob("*/module.json"):
        (sol / "modules" / mj.parent.name).mkdir(parents=True)
        text = mj.read_text()
        if mj.parent.name == "sensor":  # a module.json with variables: its spec depends on the variable set
            text = text.replace('"localhost:5000/sensor"', '"${REGISTRY}/sensor"').replace('"0.1.0"', '"${VER}"')
            assert "${REGISTRY}" in text and "${VER}" in text
        (sol / "modules" / mj.parent.name / "module.json").write_text(text)
    (sol / "modules" / "inference" / "deploymentconfig.json").write_text(json.dumps(
        {"containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1}}))
    (sol / ".env").write_text("REGISTRY=localhost:5000\nVER=0.1.0\nCONTAINER_TAG=\n")
    return sol


VARIABLE_SETS = [
    {"SEND_INTERVAL": "1"},
    {"SEND_INTERVAL": "2", "VER": "0.2.0"},
    {"SEND_INTERVAL": "3", "REGISTRY": "myacr.azurecr.io"},
    {"SEND_INTERVAL": "1", "DEFAULT_PLATFORM": "arm64v8"},
    {"SEND_INTERVAL": "4", "CONTAINER_TAG": "canary"},
    {"SEND_INTERVAL": "2", "VER": "0.2.0"},  # again: the cached spec for this expansion
    {"SEND_INTERVAL": "1"},
]


def test_same_manifests_as_genconfig(solution: Path) -> None:
    renderer = FleetRenderer(solution, None, None, {})
    seen = set()
    for variables in VARIABLE_SETS:
        expected = _genconfig(solution, environ=variables, write=False, validate=False).manifest
        got = renderer.render(variables)
        assert got == expected
        assert json.dumps(got, indent=2) == json.dumps(expected, indent=2)  # key order too
        seen.add(json.dumps(got, sort_keys=True))
    assert len(seen) == 5
    mods = got["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]
    # deploymentconfig.json limits are opt-in (genconfig --resource-limits); the fleet renders the default
    assert "NanoCpus" not in mods["inference"]["settings"]["createOptions"]
    with_platform = FleetRenderer(solution, None, "arm32v7", {}).render({"SEND_INTERVAL": "1"})
    assert with_platform == _genconfig(solution, environ={"SEND_INTERVAL": "1"}, platform="arm32v7",
                                      write=False, validate=False).manifest


def test_files_are_read_once(solution: Path) -> None:
    renderer = FleetRenderer(solution, None, None, {})
    first = renderer.render({"SEND_INTERVAL": "1"})
    renderer.render({"SEND_INTERVAL": "2"})
    (solution / "deployment.template.json").write_text("{}")  # not seen any more during this fleet's render
    (solution / "modules" / "monitor" / "module.json").write_text("{}")
    (solution / ".env").write_text("")
    assert renderer.render({"SEND_INTERVAL": "1"}) == first


def test_errors_are_genconfig_errors(solution: Path) -> None:
    (solution / ".env").write_text("REGISTRY=localhost:5000\n")  # VER only from the variables
    renderer = FleetRenderer(solution, None, None, {})
    renderer.render({"SEND_INTERVAL": "1", "VER": "0.3.0"})  # the first render (through genconfig)
    with pytest.raises(GeneratorError) as expected:
        _genconfig(solution, environ={"SEND_INTERVAL": "1"}, write=False, validate=False)
    with pytest.raises(GeneratorError) as got:
        renderer.render({"SEND_INTERVAL": "1"})
    assert got.value.render() == expected.value.render() and "VER" in got.value.message
    with pytest.raises(GeneratorError) as got:
        renderer.render({"VER": "1"})  # SEND_INTERVAL unset: the template's own unresolved-variable error
    assert "SEND_INTERVAL" in got.value.message and got.value.location.line is not None
    with pytest.raises(GeneratorError) as got:
        FleetRenderer(solution, "missing.json", None, {}).render({})
    assert '"missing.json" not found' in got.value.message


def test_solution_env_equals_load_env(solution: Path) -> None:
    (solution / ".env").write_text("REGISTRY=localhost:5000\nVER=0.1.0\nURL=http://${HOST_NAME}:${PORT}\n"
                                   "# a comment\nCONFIG_OUTPUT_DIR=out\nbad line\n")
    base = {"PATH": "/bin", "PORT": "80", "MODULES_PATH": ""}
    renderer = FleetRenderer(solution, None, None, base)
    (solution / ".env").write_text((solution / ".env").read_text() + "SEND_INTERVAL=1\nREF=${REGISTRY}/x\n"
                                   "export LEVEL='info'\nLEVEL=debug\n")
    for variables in ({}, {"SEND_INTERVAL": "2"}, {"HOST_NAME": "h"}, {"PORT": "8080"}, {"VER": "9"},
                      {"REGISTRY": "r"}, {"LEVEL": "warn"}, {"SEND_INTERVAL": "3", "LEVEL": "x", "NEW": "1"},
                      {"DEFAULT_PLATFORM": "arm64v8"}, {"MODULES_PATH": "mods"}, {"PATH": "/usr/bin", "X": ""},
                      {"CONFIG_OUTPUT_DIR": "elsewhere"}, {"DOTENV_FILE": "other.env"}):
        expected = load_env(solution, {**base, **variables})
        got = renderer.solution_env(variables)
        assert got == expected and list(got.values.items()) == list(expected.values.items()), variables
    assert renderer.solution_env({"HOST_NAME": "h"}).values["URL"] == "http://h:80"
    assert renderer.solution_env({}).warnings  # the unparsable line, as load_env reports it
    assert renderer.solution_env({"REGISTRY": "r"}).values["REF"] == "r/x"  # interpolated: through load_env
    dotenv = renderer._dotenv
    assert dotenv is not None and dotenv.only_as_key("SEND_INTERVAL") and dotenv.only_as_key("LEVEL")
    assert not dotenv.only_as_key("REGISTRY") and not dotenv.only_as_key("DEFAULT_PLATFORM")


def test_registry_credentials_in_env_render_like_genconfig(solution: Path) -> None:
    # genconfig's default adds no registryCredentials (iotedgedev's output), and a user name without a server
    # (the VS Code extension's layout) is no error: the fleet renders exactly the same
    (solution / ".env").write_text("REGISTRY=localhost:5000\nVER=0.1.0\nCONTAINER_REGISTRY_SERVER=localhost:5000\n"
                                   "CONTAINER_REGISTRY_USERNAME=u\nCONTAINER_REGISTRY_PASSWORD=p\n"
                                   "CONTAINER_REGISTRY_USERNAME_2=x\n")
    renderer = FleetRenderer(solution, None, None, {})
    for variables in ({"SEND_INTERVAL": "1"}, {"SEND_INTERVAL": "2"}, {"SEND_INTERVAL": "3", "REGISTRY": "elsewhere"}):
        expected = _genconfig(solution, environ=variables, write=False, validate=False).manifest
        assert renderer.render(variables) == expected
    settings = expected["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]
    assert not settings.get("registryCredentials")
