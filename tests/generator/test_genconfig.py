"""genconfig beyond iotedgedev: strict unresolved names, never-variables, JSON/YAML/Jinja2 errors with positions,
resource limits, chunking, output folder rules and atomic writes. Runs against files in tmp folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edgegen.generator.createoptions import merge_chunks
from edgegen.generator.errors import GeneratorError, RenderError, UnresolvedError
from edgegen.pipeline import genconfig

REPO = Path(__file__).resolve().parents[2]


def template(modules: dict[str, Any] | None = None, routes: dict[str, Any] | None = None,
             schema: str | None = "4.0.0") -> dict[str, Any]:
    data: dict[str, Any] = {"modulesContent": {
        "$edgeAgent": {"properties.desired": {
            "schemaVersion": "1.1",
            "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
            "systemModules": {
                "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4",
                                                             "createOptions": {}}},
                "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                            "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4", "createOptions": {}}}},
            "modules": modules or {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": routes or {},
                                            "storeAndForwardConfiguration": {"timeToLiveSecs": 7200}}}}}
    if schema is not None:
        data["$schema-template"] = schema
    return data


def user_module(image: str, create_options: Any = None) -> dict[str, Any]:
    return {"version": "1.0", "type": "docker", "status": "running", "restartPolicy": "always",
            "settings": {"image": image, "createOptions": {} if create_options is None else create_options}}


def module_json(folder: Path, name: str, platforms: tuple[str, ...] = ("amd64", "amd64.debug")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "module.json").write_text(json.dumps({
        "$schema-version": "0.0.1",
        "image": {"repository": "${CONTAINER_REGISTRY_SERVER}/" + name,
                  "tag": {"version": "0.1.0", "platforms": {p: f"./Dockerfile.{p}" for p in platforms}}}}, indent=4))


@pytest.fixture
def sol(tmp_path: Path) -> Path:
    (tmp_path / ".env").write_text('CONTAINER_REGISTRY_SERVER="localhost:5000"\n')
    module_json(tmp_path / "modules" / "filter", "filter")
    return tmp_path


def write(sol: Path, data: dict[str, Any] | str, name: str = "deployment.template.json") -> Path:
    path = sol / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


def gen(sol: Path, tpl: str | None = None, env: dict[str, str] | None = None, **kw: Any) -> Any:
    kw.setdefault("validate", False)
    return genconfig(tpl, cwd=sol, environ=env or {}, **kw)


def agent_modules(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]  # type: ignore[no-any-return]


# --- the repo's own solution ---------------------------------------------------------------------------------


def test_repo_solution_renders(tmp_path: Path) -> None:
    shutil.copyfile(REPO / "deployment.template.json", tmp_path / "deployment.template.json")
    for mj in (REPO / "modules").glob("*/module.json"):
        (tmp_path / "modules" / mj.parent.name).mkdir(parents=True)
        shutil.copyfile(mj, tmp_path / "modules" / mj.parent.name / "module.json")
        dc = mj.parent / "deploymentconfig.json"
        if dc.exists():
            shutil.copyfile(dc, tmp_path / "modules" / mj.parent.name / "deploymentconfig.json")
    shutil.copytree(REPO / ".models", tmp_path / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    from edgegen.models.registry import SolutionModels

    res = genconfig(cwd=tmp_path, environ={}, validate=True, fail_on_validation_error=True,
                    models=SolutionModels(tmp_path, {}))
    assert res.output_path == Path("manifests") / "deployment.amd64.json"
    mods = agent_modules(res.manifest)
    assert mods["inference"]["env"]["EDGEGEN_MODELS"]["value"].startswith("sensor-anomaly:2@sha256:")
    assert {m: mods[m]["settings"]["image"] for m in ("sensor", "inference", "monitor")} == {
        m: f"localhost:5000/{m}:0.1.0-amd64" for m in ("sensor", "inference", "monitor")}
    routes = res.manifest["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]
    assert set(routes) == {"sensorToInference", "inferenceToMonitor", "inferenceErrorsToMonitor", "monitorToIoTHub"}
    assert (tmp_path / "manifests" / "deployment.amd64.json").read_text() == json.dumps(res.manifest, indent=2)


# --- unresolved is an error --------------------------------------------------------------------------------


def test_unset_variable_is_an_error_with_position(sol: Path) -> None:
    data = template({"filter": user_module("${MODULES.filter}")})
    data["modulesContent"]["$edgeHub"]["properties.desired"]["storeAndForwardConfiguration"]["timeToLiveSecs"] = 1
    text = json.dumps(data, indent=2).replace('"timeToLiveSecs": 1', '"timeToLiveSecs": ${TTL}')
    write(sol, text)
    with pytest.raises(UnresolvedError) as exc:
        gen(sol)
    err = exc.value
    line_no = next(i for i, ln in enumerate(text.splitlines(), 1) if "${TTL}" in ln)
    assert err.name == "TTL"
    assert err.location is not None
    assert (err.location.file, err.location.line) == ("deployment.template.json", line_no)
    assert err.location.column == text.splitlines()[line_no - 1].index("${TTL}") + 1
    assert "${TTL} is not set" in err.render() and "--allow-unresolved" in err.render()
    assert not (sol / "manifests").exists()
    # set it, and the unquoted number works (iotedgedev's non_str_placeholder)
    res = gen(sol, env={"TTL": "60"})
    assert res.manifest["modulesContent"]["$edgeHub"]["properties.desired"]["storeAndForwardConfiguration"] == {
        "timeToLiveSecs": 60}


def test_allow_unresolved_keeps_iotedgedev_behaviour(sol: Path) -> None:
    write(sol, template({"filter": user_module("${MODULES.filter}", {"Env": ["A=$NOT_SET"]})}))
    res = gen(sol, allow_unresolved=True)
    assert json.loads(agent_modules(res.manifest)["filter"]["settings"]["createOptions"]) == {"Env": ["A=$NOT_SET"]}
    assert [e.name for e in res.render.unresolved] == ["NOT_SET"]


def test_unresolved_placeholder_names_the_module_json_searched(sol: Path) -> None:
    write(sol, template({"nosuch": user_module("${MODULES.nosuch}")}))
    with pytest.raises(UnresolvedError) as exc:
        gen(sol)
    err = exc.value
    assert err.name == "MODULES.nosuch"
    assert str(sol / "modules" / "nosuch" / "module.json") in err.searched
    assert "module 'nosuch'" in err.message and err.location is not None and err.location.line is not None
    assert "modules" in (err.location.json_path or "")


def test_placeholder_for_a_platform_the_module_lacks(sol: Path) -> None:
    write(sol, template({"filter": user_module("${MODULES.filter.arm64v8}")}))
    with pytest.raises(UnresolvedError, match="has no platform 'arm64v8'"):
        gen(sol)
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    with pytest.raises(UnresolvedError, match="has no platform 'arm32v7'"):
        gen(sol, platform="arm32v7")


def test_placeholder_outside_settings_image_is_reported(sol: Path) -> None:
    mod = user_module("${MODULES.filter}")
    mod["env"] = {"SELF": {"value": "${MODULES.filter}"}}
    write(sol, template({"filter": mod}))
    with pytest.raises(UnresolvedError, match="whole settings.image"):
        gen(sol)


def test_unset_variable_in_module_json_is_an_error(sol: Path) -> None:
    (sol / ".env").write_text("")
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    with pytest.raises(UnresolvedError) as exc:
        gen(sol)
    assert exc.value.name == "CONTAINER_REGISTRY_SERVER"
    assert exc.value.location is not None and exc.value.location.file is not None
    assert exc.value.location.file.endswith("modules/filter/module.json") and exc.value.location.line == 4


def test_never_variables_and_route_names(sol: Path) -> None:
    routes = {"r1": "FROM /messages/modules/filter/* WHERE $connectionModuleId = 'filter' AND "
                    "$body.temp > 3 INTO $upstream"}
    write(sol, template({"filter": user_module("${MODULES.filter}")}, routes))
    env = {"edgeAgent": "X", "edgeHub": "X", "upstream": "X", "schema": "X"}
    res = gen(sol, env=env)
    content = res.manifest["modulesContent"]
    assert set(content) == {"$edgeAgent", "$edgeHub"}
    assert content["$edgeHub"]["properties.desired"]["routes"] == routes
    assert res.output_path.name == "deployment.amd64.json"  # $schema-template was read, then removed
    assert "$schema-template" not in res.manifest


def test_invalid_json_after_expansion_points_into_the_source(sol: Path) -> None:
    text = json.dumps(template(), indent=2).replace('"schemaVersion": "1.2"', '"schemaVersion": $HUBV')
    write(sol, text)
    with pytest.raises(RenderError) as exc:
        gen(sol, env={"HUBV": "1.2,,"})
    loc = exc.value.location
    assert loc is not None and loc.line is not None
    assert "$HUBV" in (loc.source_line or "")
    assert "not valid JSON" in exc.value.message


def test_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match='template file "deployment.template.json" not found'):
        genconfig(cwd=tmp_path, environ={})


# --- createOptions ---------------------------------------------------------------------------------------


def big_options(n: int) -> dict[str, Any]:
    return {"Env": [f"VAR{i:04d}=" + "x" * 40 for i in range(n)]}


def test_chunks_and_no_chunk(sol: Path) -> None:
    opts = big_options(30)
    write(sol, template({"filter": user_module("${MODULES.filter}", opts)}))
    settings = agent_modules(gen(sol).manifest)["filter"]["settings"]
    keys = [k for k in settings if k.startswith("createOptions")]
    assert keys == ["createOptions", "createOptions01", "createOptions02", "createOptions03"]
    assert all(len(settings[k]) <= 512 for k in keys) and json.loads(merge_chunks(settings)) == opts
    one = agent_modules(gen(sol, chunk=False).manifest)["filter"]["settings"]
    assert [k for k in one if k.startswith("createOptions")] == ["createOptions"]
    assert len(one["createOptions"]) > 512 and json.loads(one["createOptions"]) == opts


def test_more_than_eight_chunks_is_an_error_naming_module_and_size(sol: Path) -> None:
    opts = big_options(100)
    size = len(json.dumps(opts, separators=(",", ":")))
    write(sol, template({"filter": user_module("${MODULES.filter}", opts)}))
    with pytest.raises(RenderError) as exc:
        gen(sol)
    assert "'filter'" in exc.value.message and str(size) in exc.value.message and "--no-chunk" in (exc.value.hint or "")
    assert agent_modules(gen(sol, chunk=False).manifest)["filter"]["settings"]["createOptions"] == json.dumps(
        opts, separators=(",", ":"))


def test_string_create_options_are_kept_verbatim(sol: Path) -> None:
    raw = '{ "HostConfig" : {"Privileged": true} }'
    write(sol, template({"filter": user_module("${MODULES.filter}", raw)}))
    assert agent_modules(gen(sol).manifest)["filter"]["settings"]["createOptions"] == raw


# --- resource limits from deploymentconfig.json -------------------------------------------------------------


def limits(sol: Path, cpu: float, mem: float) -> None:
    (sol / "modules" / "filter" / "deploymentconfig.json").write_text(json.dumps(
        {"computeType": "ACI", "containerResourceRequirements": {"cpu": cpu, "memoryInGB": mem}}))


def test_resource_limits_become_host_config(sol: Path) -> None:
    limits(sol, 0.5, 1.5)
    write(sol, template({"filter": user_module("${MODULES.filter}", {"HostConfig": {"Privileged": True}})}))
    plain = gen(sol)  # by default: iotedgedev's output, the deploymentconfig.json is not read
    assert json.loads(agent_modules(plain.manifest)["filter"]["settings"]["createOptions"]) == {
        "HostConfig": {"Privileged": True}}
    res = gen(sol, resource_limits=True)
    opts = json.loads(agent_modules(res.manifest)["filter"]["settings"]["createOptions"])
    assert opts == {"HostConfig": {"Privileged": True, "NanoCpus": 500_000_000, "Memory": int(1.5 * 1024**3)}}
    assert any("deploymentconfig.json" in n for n in res.notes)


def test_explicit_create_options_win_over_resource_limits(sol: Path) -> None:
    limits(sol, 2, 4)
    write(sol, template({"filter": user_module("${MODULES.filter}", '{"HostConfig":{"Memory":1024}}')}))
    opts = json.loads(agent_modules(gen(sol, resource_limits=True).manifest)["filter"]["settings"]["createOptions"])
    assert opts == {"HostConfig": {"Memory": 1024, "NanoCpus": 2_000_000_000}}


def test_bad_deploymentconfig_is_an_error_with_its_path(sol: Path) -> None:
    limits(sol, -1, 1)
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    gen(sol)  # not read by default, so not refused (iotedgedev renders it)
    with pytest.raises(RenderError) as exc:
        gen(sol, resource_limits=True)
    assert exc.value.location is not None
    assert exc.value.location.json_path == "containerResourceRequirements.cpu"
    assert (exc.value.location.file or "").endswith("deploymentconfig.json")


# --- YAML and Jinja2 ----------------------------------------------------------------------------------------


def test_yaml_template_is_the_same_model(sol: Path) -> None:
    import yaml

    data = template({"filter": user_module("${MODULES.filter}", {"HostConfig": {"Privileged": True}})})
    write(sol, data)
    from_json = gen(sol).manifest
    (sol / "deployment.template.json").unlink()
    write(sol, yaml.safe_dump(data, sort_keys=False), "deployment.template.yaml")
    res = gen(sol)  # found without -f
    assert res.template_file == "deployment.template.yaml"
    assert res.output_path == Path("manifests") / "deployment.amd64.json"
    assert res.manifest == from_json


def test_yaml_error_has_a_line(sol: Path) -> None:
    write(sol, "modulesContent:\n  $edgeAgent: [\n", "deployment.template.yaml")
    with pytest.raises(RenderError) as exc:
        gen(sol, "deployment.template.yaml")
    assert exc.value.location is not None and exc.value.location.line is not None


JINJA = """{# routes of a module chain, from edgegen's templates/ #}
{%- from "fragments/routes.j2" import chain_routes -%}
{%- from "fragments/modules.j2" import module -%}
{"$schema-template": "4.0.0", "modulesContent": {
 "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1",
   "runtime": {"type": "docker", "settings": {"minDockerVersion": "v1.25"}},
   "systemModules": {
     "edgeAgent": {"type": "docker", "settings": {"image": "mcr.microsoft.com/azureiotedge-agent:1.4"}},
     "edgeHub": {"type": "docker", "status": "running", "restartPolicy": "always",
                 "settings": {"image": "mcr.microsoft.com/azureiotedge-hub:1.4"}}},
   "modules": {
     {{ module("a", image=modules.filter.image, env={"N": 1}) }},
     {{ module("filter") }}{% if env.get("WITH_C") %},
     {{ module("c", image="busybox:" ~ platform) }}{% endif %}
   }}},
 "$edgeHub": {"properties.desired": {"schemaVersion": "1.2",
   "routes": {{ chain_routes(["a", {"module": "filter", "input": "in", "output": "out"}]) }}}}}}
"""


def test_jinja_template_with_fragments_from_templates(sol: Path) -> None:
    write(sol, JINJA, "deployment.template.json.j2")
    res = gen(sol, "deployment.template.json.j2", env={"WITH_C": "1"})
    assert res.output_path == Path("manifests") / "deployment.amd64.json"
    mods = agent_modules(res.manifest)
    assert mods["a"]["settings"]["image"] == "localhost:5000/filter:0.1.0-amd64"
    assert mods["a"]["env"] == {"N": {"value": "1"}}
    assert mods["filter"]["settings"]["image"] == "localhost:5000/filter:0.1.0-amd64"  # ${MODULES.filter} after
    assert mods["c"]["settings"]["image"] == "busybox:amd64"
    routes = res.manifest["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]
    assert routes == {
        "aTofilter": {
            "route": 'FROM /messages/modules/a/outputs/output1 INTO BrokeredEndpoint("/modules/filter/inputs/in")',
            "priority": 0, "timeToLiveSecs": 86400},
        "filterToIoTHub": {"route": "FROM /messages/modules/filter/outputs/out INTO $upstream",
                           "priority": 0, "timeToLiveSecs": 86400}}


def test_jinja_strict_undefined_names_the_line(sol: Path) -> None:
    write(sol, "{# x #}\n{\n  \"a\": \"{{ env.NOPE }}\"\n}\n", "deployment.template.json.j2")
    with pytest.raises(RenderError) as exc:
        gen(sol, "deployment.template.json.j2")
    assert "NOPE" in exc.value.message and exc.value.location is not None and exc.value.location.line == 3


def test_jinja_is_sandboxed(sol: Path) -> None:
    write(sol, "{# x #}{{ ''.__class__.__mro__[1].__subclasses__() }}", "deployment.template.json.j2")
    with pytest.raises(RenderError, match="Jinja2"):
        gen(sol, "deployment.template.json.j2")


def test_plain_template_with_go_template_braces_is_not_jinja(sol: Path) -> None:
    opts = {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"tag": "{{.Name}}/{{.ID}}"}}}}
    write(sol, template({"filter": user_module("${MODULES.filter}", opts)}))
    assert json.loads(agent_modules(gen(sol).manifest)["filter"]["settings"]["createOptions"]) == opts


# --- settings, output folder, atomic writes --------------------------------------------------------------------


def test_output_dir_rules(sol: Path) -> None:
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    assert gen(sol).output_path == Path("manifests") / "deployment.amd64.json"  # edgegen's default
    (sol / ".env").write_text('CONTAINER_REGISTRY_SERVER="localhost:5000"\nCONFIG_OUTPUT_DIR="config"\n')
    assert gen(sol).output_path == Path("config") / "deployment.amd64.json"  # .env wins over the default
    assert gen(sol, env={"CONFIG_OUTPUT_DIR": "out"}).output_path == Path("out") / "deployment.amd64.json"
    assert gen(sol, output_dir="o2").output_path == Path("o2") / "deployment.amd64.json"  # -o wins
    assert (sol / "config" / "deployment.amd64.json").is_file() and (sol / "o2" / "deployment.amd64.json").is_file()


def test_environment_wins_over_dotenv_and_dotenv_file(sol: Path) -> None:
    (sol / "other.env").write_text('CONTAINER_REGISTRY_SERVER="other:5000"\nCONTAINER_TAG="${TAGBASE}-x"\n')
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    env = {"DOTENV_FILE": '"other.env"', "TAGBASE": "rc1"}
    image = agent_modules(gen(sol, env=env).manifest)["filter"]["settings"]["image"]
    assert image == "other:5000/filter:0.1.0-rc1-x-amd64"
    env["CONTAINER_REGISTRY_SERVER"] = "env:1"
    image = agent_modules(gen(sol, env=env).manifest)["filter"]["settings"]["image"]
    assert image == "env:1/filter:0.1.0-rc1-x-amd64"


def test_failed_run_leaves_previous_manifest_untouched(sol: Path) -> None:
    write(sol, template({"filter": user_module("${MODULES.filter}")}))
    out = sol / "manifests" / "deployment.amd64.json"
    gen(sol)
    before = out.read_bytes()
    write(sol, template({"filter": user_module("${MODULES.filter}", {"Env": ["X=$UNSET"]})}))
    with pytest.raises(UnresolvedError):
        gen(sol)
    bad = template({"filter": user_module("${MODULES.filter}")})
    bad["modulesContent"]["$edgeHub"]["properties.desired"]["routes"] = {"r": "FROM nowhere INTO"}
    write(sol, bad)
    from edgegen.generator.validation import ValidationError

    with pytest.raises(ValidationError):
        gen(sol, validate=True, fail_on_validation_error=True)
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["deployment.amd64.json"]  # no temp files left behind


def test_nested_properties_desired_and_dotted_keys_deeper_down(sol: Path) -> None:
    data = template({"filter": user_module("${MODULES.filter}", {"Labels": {"com.example.a": "b"}})})
    agent = data["modulesContent"]["$edgeAgent"]
    agent["properties"] = {"desired": agent.pop("properties.desired")}
    write(sol, data)
    settings = gen(sol).manifest["modulesContent"]["$edgeAgent"]["properties"]["desired"]["modules"]["filter"][
        "settings"]
    assert settings["image"] == "localhost:5000/filter:0.1.0-amd64"
    assert json.loads(settings["createOptions"]) == {"Labels": {"com.example.a": "b"}}


def test_moduledir_without_module_json_points_at_the_template(sol: Path) -> None:
    write(sol, template({"x": user_module("${MODULEDIR<./elsewhere>.debug}")}))
    for allow in (False, True):  # iotedgedev fails here too ("No module.json file found")
        with pytest.raises(UnresolvedError) as exc:
            gen(sol, allow_unresolved=allow)
        assert exc.value.searched == (str(sol / "elsewhere" / "module.json"),)
        assert exc.value.location is not None and exc.value.location.file == "deployment.template.json"
        assert "${MODULEDIR<./elsewhere>" in (exc.value.location.source_line or "")


def test_no_route_is_a_warning_only_for_modules_whose_code_uses_messaging(sol: Path) -> None:
    module_json(sol / "modules" / "web", "web")
    (sol / "modules" / "filter" / "main.py").write_text("client.send_message_to_output(msg, 'out')\n")
    (sol / "modules" / "web" / "main.py").write_text("from http.server import HTTPServer\n")
    write(sol, template({"filter": user_module("${MODULES.filter}"), "web": user_module("${MODULES.web}"),
                         "sensor": user_module("mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0")},
                        routes={"r": "FROM /messages/modules/sensor/* INTO $upstream"}))
    res = gen(sol, validate=True)
    lonely = {f.path.rsplit(".", 1)[-1]: f.severity for f in res.findings if "no route to or from it" in f.message}
    assert lonely == {"filter": "warning", "web": "info"}


def test_also_unset_names_each_other_variable_once_with_its_lines(sol: Path) -> None:
    write(sol, '{"modulesContent": {"$edgeAgent": {"properties.desired": {"schemaVersion": "$A",\n'
               '"x": "$A $B",\n"y": "${C} $B $B"}}, "$edgeHub": {"properties.desired": {"schemaVersion": "1.2"}}}}')
    with pytest.raises(UnresolvedError) as info:
        gen(sol)
    assert info.value.name == "A"
    assert (info.value.hint or "").endswith("Also unset: B (lines 2, 3), C (line 3)")
