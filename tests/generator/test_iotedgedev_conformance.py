"""genconfig vs. what iotedgedev 3.3.9's own tests assert (tests/conformance/iotedgedev/EXPECTATIONS.md).

One parametrized test; each case names the fixture and the upstream test it mirrors. Runs use the upstream CI
set-up: cwd = the fixture folder, its ``.env.tmp`` as ``.env``, and an explicit (otherwise empty) environment.
iotedgedev leaves unset variables in place, so these runs pass ``allow_unresolved=True``; the strict default
is covered in test_genconfig.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.createoptions import merge_chunks
from edgegen.generator.naming import image_placeholder, manifest_name
from edgegen.pipeline import genconfig

Check = Callable[[Path, Path], None]  # (assets copy, shared iotedgedev dir)
CASES: dict[str, Check] = {}


def case(name: str) -> Callable[[Check], Check]:
    def deco(fn: Check) -> Check:
        CASES[name] = fn
        return fn

    return deco


def run(cwd: Path, template: str | None = None, env: dict[str, str] | None = None, **kw: Any) -> Any:
    kw.setdefault("allow_unresolved", True)
    return genconfig(template, cwd=cwd, environ=env or {}, **kw)


def desired(manifest: dict[str, Any], twin: str) -> dict[str, Any]:
    return manifest["modulesContent"][twin]["properties.desired"]  # type: ignore[no-any-return]


def findings_at(result_or_findings: Any, suffix: str) -> list[Any]:
    findings = getattr(result_or_findings, "findings", result_or_findings)
    return [f for f in findings if f.path.endswith(suffix) and f.severity in ("error", "warning")]


# --- tests/test_utility.py: get_deployment_manifest_name ----------------------------------------------------

NAME_TABLE = [
    ("config/deployment.template.json", "0.0.1", "amd64", None, "deployment.json"),
    ("deployment.template.json", "0.0.1", "amd64", None, "deployment.json"),
    ("deployment.debug.template.json", "0.0.1", "amd64", None, "deployment.debug.json"),
    ("config/deployment.template.json", "1.0.0", "amd64", None, "deployment.amd64.json"),
    ("deployment.template.json", "1.0.0", "amd64", None, "deployment.amd64.json"),
    ("deployment.debug.template.json", "1.0.0", "amd64", None, "deployment.debug.amd64.json"),
    ("", "", "", None, "deployment.json"),
    ("deployment.template.json", "1.0.0", "amd64", "foo.json", "foo.json"),
]


@case("test_utility:get_deployment_manifest_name")
def _names(assets: Path, ie: Path) -> None:
    for template, ver, platform, env_file, expected in NAME_TABLE:
        assert manifest_name(template, ver, platform, env_file) == expected, (template, ver, platform)
    assert image_placeholder("filtermodule") == "${MODULES.filtermodule}"
    assert image_placeholder("filtermodule", is_debug=True) == "${MODULES.filtermodule.debug}"


@case("test_utility:DEPLOYMENT_CONFIG_FILE via genconfig")
def _config_file(assets: Path, ie: Path) -> None:
    sol = assets / "test_solution_shared_lib"
    res = run(sol, env={"DEPLOYMENT_CONFIG_FILE": "foo.json"})
    assert res.output_path == Path("config") / "foo.json"
    assert (sol / "config" / "foo.json").is_file()


# --- tests/test_deploymentmanifest.py on template_1 ---------------------------------------------------------


@case("test_deploymentmanifest:template_1 convert_create_options")
def _template_1(assets: Path, ie: Path) -> None:
    original = json.loads((assets / "deployment.template_1.json").read_text())
    res = run(assets, "deployment.template_1.json", validate=False)
    agent = desired(res.manifest, "$edgeAgent")
    assert desired(res.manifest, "$edgeHub")["schemaVersion"] == "1.2"  # EDGEHUB_SCHEMA_VERSION from .env
    assert set(agent["modules"]) == {"tempSensor", "csharpmodule", "csharpfunction"}
    assert set(agent["systemModules"]) == {"edgeAgent", "edgeHub"}
    assert agent["systemModules"]["edgeAgent"]["settings"]["createOptions"] == ""
    hub = agent["systemModules"]["edgeHub"]["settings"]["createOptions"]
    assert isinstance(hub, str)
    assert json.loads(hub) == {"HostConfig": {"PortBindings": {"5671/tcp": [{"HostPort": "5671"}],
                                                               "8883/tcp": [{"HostPort": "8883"}],
                                                               "443/tcp": [{"HostPort": "443"}]}}}
    sensor = agent["modules"]["tempSensor"]["settings"]
    assert {"createOptions", "createOptions01", "createOptions02"} <= set(sensor)
    assert "createOptions03" not in sensor
    assert all(len(sensor[k]) <= 512 for k in ("createOptions", "createOptions01", "createOptions02"))
    assert json.loads(merge_chunks(sensor)) == original["modulesContent"]["$edgeAgent"]["properties.desired"][
        "modules"]["tempSensor"]["settings"]["createOptions"]


@case("test_utility:copy_template template_1 + module images == template_2")
def _template_2(assets: Path, ie: Path) -> None:
    # ${MODULES.csharpmodule.amd64} / ${MODULES.csharpfunction.amd64.debug} from real module.json files
    for name, platform in (("csharpmodule", "amd64"), ("csharpfunction", "amd64.debug")):
        folder = assets / "modules" / name
        folder.mkdir(parents=True)
        (folder / "module.json").write_text(json.dumps({"image": {
            "repository": "${CONTAINER_REGISTRY_SERVER}/" + name,
            "tag": {"version": "0.0.1", "platforms": {platform: f"./Dockerfile.{platform}"}}}}))
    one = run(assets, "deployment.template_1.json", validate=False, allow_unresolved=False).manifest
    two = run(assets, "deployment.template_2.json", validate=False, allow_unresolved=False).manifest
    assert one == two
    mods = desired(one, "$edgeAgent")["modules"]
    assert mods["csharpmodule"]["settings"]["image"] == "localhost:5000/csharpmodule:0.0.1-amd64"
    assert mods["csharpfunction"]["settings"]["image"] == "localhost:5000/csharpfunction:0.0.1-amd64.debug"


@case("test_deploymentmanifest:add_module_template(csharpmodule2) == template_3")
def _template_3(assets: Path, ie: Path) -> None:
    from edgegen.generator.scaffold import add_module_to_template

    path = assets / "deployment.template_1.json"
    add_module_to_template(path, "csharpmodule2")
    assert json.loads(path.read_text()) == json.loads((assets / "deployment.template_3.json").read_text())


@case("test_utility:copy_from_template_dir(%MODULE%=filtermodule) == template_4, text-identical")
def _template_4(assets: Path, ie: Path) -> None:
    from edgegen.generator.scaffold import solution_template_text

    assert solution_template_text("filtermodule") == (assets / "deployment.template_4.json").read_text()
    # and iotedgedev's own template file renders to the same text
    upstream = (ie / "template" / "deployment.template.json").read_text().replace("%MODULE%", "filtermodule")
    assert solution_template_text("filtermodule") == upstream


# --- tests/test_iotedgedev_solution.py (e2e upstream; no Docker needed for genconfig) ------------------------


@case("test_validate_deployment_template_and_manifest_failed: template_invalidresult")
def _invalidresult(assets: Path, ie: Path) -> None:
    res = run(assets, "deployment.template_invalidresult.json")
    assert res.written and res.output_path == Path("config") / "deployment.template_invalidresult.json"
    creds = "runtime.settings.registryCredentials"
    assert findings_at(res, f"{creds}.test")  # 'address' is a required property
    assert findings_at(res, f"{creds}.test.username")  # 1 is not of type 'string'
    assert findings_at(res, f"{creds}.test2.address")  # '' does not match '^[^\s]+$'
    # iotedgedev warns "createOptions of module edgeAgent should be an object" for its "": edgeAgent and the
    # official schema accept it, so edgegen says so as an info (docs/validation.md, deliberate differences)
    empty = [f for f in res.findings if f.path.endswith("systemModules.edgeAgent.settings.createOptions")]
    assert [(f.severity, f.rule) for f in empty] == [("info", "create-options")]
    assert not findings_at(res, "modules.csharpmodule.settings.createOptions")  # validation passed


@case("test_validate_create_options_failed: manifest_invalid")
def _manifest_invalid(assets: Path, ie: Path) -> None:
    res = run(assets, "deployment.manifest_invalid.json")
    assert res.written
    mods = "properties.desired.modules"
    assert findings_at(res, f"{mods}.tempSensor.settings.createOptions01")  # exceeds 512
    assert findings_at(res, f"{mods}.tempSensor.settings.createOptions02")  # exceeds 512
    assert any("JSON" in f.message for f in findings_at(res, f"{mods}.csharpmodule.settings.createOptions"))
    assert any("object" in f.message for f in findings_at(res, f"{mods}.csharpfunction.settings.createOptions"))
    assert any("JSON" in f.message for f in findings_at(res, f"{mods}.csharpfunction2.settings.createOptions"))
    assert not findings_at(res, "systemModules.edgeHub.settings.createOptions")  # passed
    assert not findings_at(res, "systemModules.edgeAgent.settings.createOptions")  # no createOptions: skipped


@pytest.mark.parametrize("name", ["deployment.manifest_invalid.json", "deployment.manifest_invalid_schema.json",
                                  "deployment.manifest_invalid_createoptions.json"])
def test_fail_gen_config_on_validation_error(assets: Path, name: str) -> None:
    """test_fail_gen_config_on_validation_error: fails with the flag (nothing written), passes without."""
    from edgegen.generator.validation import ValidationError

    with pytest.raises(ValidationError) as exc:
        run(assets, name, fail_on_validation_error=True)
    assert "validation failed" in exc.value.message
    assert not (assets / "config").exists()
    assert run(assets, name).written


@case("test_gen_config_with_non_string_placeholder: unquoted ${TTL}, CRLF")
def _non_str(assets: Path, ie: Path) -> None:
    res = run(assets, "deployment.template.non_str_placeholder.json", env={"TTL": "7200"},
              fail_on_validation_error=True)  # its route to the undefined 'filtermodule' is only a warning
    assert desired(res.manifest, "$edgeHub")["storeAndForwardConfiguration"]["timeToLiveSecs"] == 7200
    assert res.output_path == Path("config") / "deployment.template.non_str_placeholder.amd64.json"


@case("test_solution_build_without_schema_template: config/deployment.json")
def _without_schema(assets: Path, ie: Path) -> None:
    sol = assets / "test_solution_shared_lib"
    text = (assets / "deployment.template_without_schema_template.json").read_text()
    text = text.replace('"image": "${MODULES.sample_module}",', '"image": "${MODULES.sample_module.amd64}",')
    (sol / "deployment.template.json").write_text(text)
    res = run(sol)
    assert res.output_path == Path("config") / "deployment.json"
    assert "sample_module:0.0.1-RC-amd64" in (sol / "config" / "deployment.json").read_text()


def _shared_lib_images(res: Any, suffix: str) -> None:
    mods = desired(res.manifest, "$edgeAgent")["modules"]
    assert mods["sample_module"]["settings"]["image"] == f"localhost:5000/sample_module:0.0.1-RC-{suffix}"
    assert mods["sample_module_2"]["settings"]["image"] == f"localhost:5000/sample_module_2:0.0.1-RC-{suffix}"


@case("test_generate_deployment_manifest: test_solution_shared_lib")
def _shared_lib(assets: Path, ie: Path) -> None:
    sol = assets / "test_solution_shared_lib"
    res = run(sol, env={"DEFAULT_PLATFORM": "amd64"})
    assert res.output_path == Path("config") / "deployment.amd64.json"
    written = (sol / "config" / "deployment.amd64.json").read_text()
    assert written == json.dumps(res.manifest, indent=2)  # iotedgedev's json.dump(indent=2)
    _shared_lib_images(res, "amd64")
    assert "$schema-template" not in res.manifest
    assert desired(res.manifest, "$edgeAgent")["runtime"]["settings"]["registryCredentials"]["testacr"][
        "address"] == "localhost:5000"


@case("test_generate_deployment_manifest: -P windows-amd64 (Windows Docker)")
def _shared_lib_windows(assets: Path, ie: Path) -> None:
    res = run(assets / "test_solution_shared_lib", platform="windows-amd64", validate=False)
    assert res.output_path == Path("config") / "deployment.windows-amd64.json"
    _shared_lib_images(res, "windows-amd64")


@case("test_validate_deployment_template_and_manifest_success")
def _shared_lib_valid(assets: Path, ie: Path) -> None:
    res = run(assets / "test_solution_shared_lib", env={"CONTAINER_REGISTRY_PASSWORD": "nonempty"},
              fail_on_validation_error=True)
    assert res.findings is not None
    assert not [f for f in res.findings if f.severity == "error"]
    assert not [f for f in res.findings if "createOptions" in f.path and f.severity != "info"]


@case("commented-out debug test: deployment.debug.template.json")
def _shared_lib_debug(assets: Path, ie: Path) -> None:
    res = run(assets / "test_solution_shared_lib", "deployment.debug.template.json", validate=False)
    assert res.output_path == Path("config") / "deployment.debug.amd64.json"
    _shared_lib_images(res, "amd64.debug")


@case("test_solution_build_and_push_with_escapedpath: ${MODULEDIR<.\\sample_module_2>}")
def _escaped(assets: Path, ie: Path) -> None:
    res = run(assets / "test_solution_shared_lib", "deployment.escapedpath.template.json", validate=False)
    image = desired(res.manifest, "$edgeAgent")["modules"]["sample_module_2"]["settings"]["image"]
    assert image == "localhost:5000/sample_module_2:0.0.1-RC-amd64"


@case("test_solution_build_and_push_with_layered_deployment: no platform suffix")
def _layered(assets: Path, ie: Path) -> None:
    sol = assets / "test_solution_shared_lib"
    res = run(sol, "layered_deployment.flattened_props.template.json")
    assert res.output_path == Path("config") / "layered_deployment.flattened_props.json"
    mods = res.manifest["content"]["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]
    assert mods["sample_module"]["settings"]["image"] == "localhost:5000/sample_module:0.0.1-RC-amd64"
    assert mods["sample_module"]["settings"]["createOptions"] == "{}"


@case("test_solution_build_with_version_and_build_options: version ${VERSION}")
def _version(assets: Path, ie: Path) -> None:
    sol = assets / "test_solution_shared_lib"
    for mj in (sol / "modules" / "sample_module" / "module.json", sol / "sample_module_2" / "module.json"):
        mj.write_text(mj.read_text().replace('"version": "0.0.1-RC"', '"version": "${VERSION}"'))
    res = run(sol, env={"VERSION": "0.0.2"}, validate=False)
    mods = desired(res.manifest, "$edgeAgent")["modules"]
    assert mods["sample_module"]["settings"]["image"] == "localhost:5000/sample_module:0.0.2-amd64"
    assert mods["sample_module_2"]["settings"]["image"] == "localhost:5000/sample_module_2:0.0.2-amd64"


@pytest.mark.parametrize("name", sorted(CASES))
def test_iotedgedev_conformance(name: str, assets: Path, iotedgedev_dir: Path) -> None:
    CASES[name](assets, iotedgedev_dir)
