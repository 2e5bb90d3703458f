"""Model references and the ${MODELS.x} placeholders of a deployment template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgegen.errors import EdgegenError
from edgegen.generator.errors import UnresolvedError
from edgegen.models.errors import ModelError
from edgegen.models.refs import ModelRef, parse_ref
from edgegen.models.registry import Registry, SolutionModels
from edgegen.pipeline import genconfig


def test_parse_ref() -> None:
    assert parse_ref("m") == ModelRef("m")
    assert parse_ref("m:3") == ModelRef("m", 3)
    assert parse_ref("m:3@sha256:" + "f" * 64) == ModelRef("m", 3, "f" * 64)
    for bad, what in [("m:0", "positive"), ("m:x", "positive"), ("m:", "positive"), ("m@sha256:" + "f" * 64, "digest"),
                      ("m:1@md5:aa", "digest"), ("a.b", "not valid")]:
        with pytest.raises(ModelError, match=what):
            parse_ref(bad)


@given(st.text(max_size=80))
def test_parse_ref_never_crashes(text: str) -> None:
    try:
        ref = parse_ref(text)
    except ModelError:
        return
    assert parse_ref(str(ref)) == ref


TEMPLATE = {
    "$schema-template": "4.0.0",
    "modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4"}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                            "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4"}}},
            "modules": {
                "scorer": {"type": "docker", "status": "running", "restartPolicy": "always",
                           "settings": {"image": "${MODULES.scorer}"},
                           "env": {"EDGEGEN_MODELS": {"value": "${MODELS.anomaly},${MODELS.other:1}"}}},
                "plain": {"type": "docker", "status": "running", "restartPolicy": "always",
                          "settings": {"image": "${MODULES.plain}"}}}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {},
                                            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}},
    },
}


def solution(tmp_path: Path, plain_models: list[str] | None = None) -> tuple[Path, Registry]:
    for name in ("scorer", "plain"):
        folder = tmp_path / "modules" / name
        folder.mkdir(parents=True)
        spec = {"$schema-version": "0.0.1", "image": {"repository": f"localhost:5000/{name}",
                                                      "tag": {"version": "0.1.0", "platforms": {"amd64": "./D"}}}}
        if name == "plain" and plain_models is not None:
            spec["models"] = plain_models
        (folder / "module.json").write_text(json.dumps(spec))
    (tmp_path / "deployment.template.json").write_text(json.dumps(TEMPLATE))
    reg = Registry(tmp_path / ".models")
    (tmp_path / "w").write_text("1")
    reg.register(tmp_path / "w", "anomaly")
    (tmp_path / "w").write_text("2")
    reg.register(tmp_path / "w", "anomaly")
    reg.register(tmp_path / "w", "other")
    return tmp_path, reg


def render(sol: Path) -> dict:
    result = genconfig(cwd=sol, write=False, validate=False, environ={}, models=SolutionModels(sol, {}))
    return result.manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]


def test_placeholders_pin_latest_or_named_versions(tmp_path: Path) -> None:
    sol, reg = solution(tmp_path)
    mods = render(sol)
    assert mods["scorer"]["env"]["EDGEGEN_MODELS"]["value"] == f"{reg.pin('anomaly', 2)},{reg.pin('other', 1)}"
    assert "env" not in mods["plain"]


def test_module_json_models_become_the_env(tmp_path: Path) -> None:
    sol, reg = solution(tmp_path, ["anomaly:1"])
    assert render(sol)["plain"]["env"]["EDGEGEN_MODELS"]["value"] == reg.pin("anomaly", 1)


def test_unregistered_model_is_an_error_with_its_json_path(tmp_path: Path) -> None:
    sol, _ = solution(tmp_path, ["missing"])
    with pytest.raises(UnresolvedError, match="'missing' is not registered") as exc:
        render(sol)
    assert exc.value.location is not None and "plain.env.EDGEGEN_MODELS" in (exc.value.location.json_path or "")


def test_a_digest_that_differs_from_the_registry_is_refused(tmp_path: Path) -> None:
    sol, _reg = solution(tmp_path, [f"anomaly:1@sha256:{'0' * 64}"])
    with pytest.raises(EdgegenError, match="refused|pins sha256"):
        render(sol)


def test_without_a_registry_placeholders_are_errors(tmp_path: Path) -> None:
    sol, _ = solution(tmp_path)
    with pytest.raises(UnresolvedError, match="no model registry"):
        genconfig(cwd=sol, write=False, validate=False, environ={})
    # iotedgedev's way: left in place
    kept = genconfig(cwd=sol, write=False, validate=False, environ={}, allow_unresolved=True)
    mods = kept.manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]
    assert mods["scorer"]["env"]["EDGEGEN_MODELS"]["value"] == "${MODELS.anomaly},${MODELS.other:1}"
