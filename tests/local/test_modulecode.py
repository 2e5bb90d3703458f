"""ModuleResolver: module.json expanded with the solution's .env (as genconfig does), and the simulated
temperature sensor's public image run from edgegen's sensor template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.local.errors import DeviceError
from edgegen.local.modulecode import ModuleResolver


def _solution(tmp_path: Path) -> Path:
    folder = tmp_path / "modules" / "filter"
    folder.mkdir(parents=True)
    (folder / "module.json").write_text(json.dumps({"image": {
        "repository": "${CONTAINER_REGISTRY_SERVER}/filter",
        "tag": {"version": "0.0.1", "platforms": {"amd64": "./Dockerfile.amd64"}}}}))
    (folder / "main.py").write_text("print('hi')\n")
    (tmp_path / ".env").write_text('CONTAINER_REGISTRY_SERVER="localhost:5000"\n')
    return tmp_path


def test_module_json_is_expanded_with_the_solutions_env(tmp_path: Path) -> None:
    sol = _solution(tmp_path)
    code = ModuleResolver(sol, environ={}).resolve("filter", "localhost:5000/filter:0.0.1-amd64")
    assert code.folder == (sol / "modules" / "filter").resolve()
    # the process environment still wins over .env, as for genconfig
    resolver = ModuleResolver(sol, environ={"CONTAINER_REGISTRY_SERVER": "myacr.azurecr.io"})
    assert resolver.resolve("filter", "myacr.azurecr.io/filter:0.0.1-amd64").spec.name == "filter"


def test_the_simulated_temperature_sensor_runs_from_edgegens_template(tmp_path: Path) -> None:
    sol = _solution(tmp_path)
    code = ModuleResolver(sol, environ={}).resolve(
        "tempSensor", "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0")
    assert code.folder == (sol / ".state" / "standins" / "sensor").resolve()
    main = code.entry.read_text()
    assert 'OUTPUT = "temperatureOutput"' in main and "IoTHubModuleClient" in main
    assert (code.folder / "requirements.txt").read_text().strip()
    # written once; a second resolve reuses the folder unchanged
    before = code.entry.stat().st_mtime_ns
    ModuleResolver(sol, environ={}).resolve("other", "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.1")
    assert code.entry.stat().st_mtime_ns == before


def test_other_images_without_code_are_an_error_naming_what_was_found(tmp_path: Path) -> None:
    sol = _solution(tmp_path)
    with pytest.raises(DeviceError) as info:
        ModuleResolver(sol, environ={}).resolve("db", "mongo:7")
    assert "no module folder builds image 'mongo:7'" in info.value.message
    assert "localhost:5000/filter (filter)" in (info.value.hint or "")
