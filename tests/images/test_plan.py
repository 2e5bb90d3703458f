from __future__ import annotations

from pathlib import Path

import pytest

from edgegen.errors import EdgegenError
from edgegen.generator.modulejson import image_tag
from edgegen.images.errors import ImageError
from edgegen.images.plan import plan_targets
from tests.images.conftest import write_module, write_solution

ENV = {"CONTAINER_REGISTRY_SERVER": "MyAcr.azurecr.io"}


def _solution(tmp_path: Path, env: dict[str, str] | None = None) -> Path:
    for name in ("alpha", "beta", "gamma"):
        write_module(
            tmp_path,
            name,
            platforms={
                "amd64": "./Dockerfile.amd64",
                "amd64.debug": "./Dockerfile.amd64.debug",
                "arm64v8": "./D.arm",
                "arm64v8.debug": "./D.arm.debug",
            },
        )
    write_module(tmp_path, "other", repository="localhost:5000/other")
    (tmp_path / "modules" / "notamodule").mkdir()
    return write_solution(
        tmp_path,
        {
            "first": "${MODULES.alpha}",
            "firstdebug": "${MODULES.alpha.debug}",
            "second": "${MODULES.beta.arm64v8}",
            "third": "${MODULEDIR<modules/gamma>}",
            "public": "mcr.microsoft.com/azureiotedge-simulated-temperature-sensor:1.0",
            "again": "${MODULES.alpha}",
        },
        {**ENV, **(env or {})},
    )


def test_targets_follow_the_template_placeholders(tmp_path: Path) -> None:
    template = _solution(tmp_path)
    plan = plan_targets(template.name, cwd=tmp_path, environ={})
    assert plan.template == template and plan.platform == "amd64"
    targets = plan.targets
    got = {t.tag: (t.modules, t.platform, t.spec.name) for t in targets}
    assert got == {
        "myacr.azurecr.io/alpha:0.1.0-amd64": (("first", "again"), "amd64", "alpha"),
        "myacr.azurecr.io/alpha:0.1.0-amd64.debug": (("firstdebug",), "amd64.debug", "alpha"),
        "myacr.azurecr.io/beta:0.1.0-arm64v8": (("second",), "arm64v8", "beta"),
        "myacr.azurecr.io/gamma:0.1.0-amd64": (("third",), "amd64", "gamma"),
    }
    for t in targets:  # the very function genconfig uses
        assert t.tag == image_tag(t.spec.repository, t.spec.version, t.platform, "")


def test_container_tag_platform_bypass_and_selection(tmp_path: Path) -> None:
    template = _solution(tmp_path, {"CONTAINER_TAG": "ci42", "BYPASS_MODULES": "second, third"})
    environ = {"DEFAULT_PLATFORM": "arm64v8"}
    tags = sorted(t.tag for t in plan_targets(cwd=tmp_path, environ=environ).targets)
    assert tags == ["myacr.azurecr.io/alpha:0.1.0-ci42-arm64v8", "myacr.azurecr.io/alpha:0.1.0-ci42-arm64v8.debug"]
    only = plan_targets(template, cwd=tmp_path, environ=environ, platform="amd64", only=["firstdebug"]).targets
    assert [t.tag for t in only] == ["myacr.azurecr.io/alpha:0.1.0-ci42-amd64.debug"]
    assert plan_targets(template, cwd=tmp_path, environ={"BYPASS_MODULES": "*"}).targets == ()


def test_environment_overrides_dotenv(tmp_path: Path) -> None:
    template = _solution(tmp_path)
    plan = plan_targets(template, cwd=tmp_path, environ={"CONTAINER_REGISTRY_SERVER": "override.example.com"})
    assert plan.env["CONTAINER_REGISTRY_SERVER"] == "override.example.com"
    assert plan.targets[0].tag.startswith("override.example.com/")


def test_unknown_module_name_lists_the_known_ones(tmp_path: Path) -> None:
    template = _solution(tmp_path)
    with pytest.raises(ImageError) as info:
        plan_targets(template, cwd=tmp_path, environ={}, only=["nosuch"])
    assert "nosuch" in info.value.message
    assert "alpha" in (info.value.hint or "") and "first" in (info.value.hint or "")


def test_broken_template_reports_line_and_column(tmp_path: Path) -> None:
    template = tmp_path / "deployment.template.json"
    template.write_text('{\n  "modulesContent": {\n    "x": ${UNSET_TTL}\n  }\n}\n', encoding="utf-8")
    with pytest.raises(EdgegenError) as info:
        plan_targets(template, cwd=tmp_path, environ={})
    loc = info.value.location
    assert loc is not None and loc.line == 3
    assert "${UNSET_TTL}" in info.value.render()


def test_missing_module_json_is_a_clear_error(tmp_path: Path) -> None:
    template = write_solution(tmp_path, {"ghost": "${MODULES.ghost}"}, {})
    with pytest.raises(EdgegenError) as info:
        plan_targets(template, cwd=tmp_path, environ={})
    assert "module.json" in info.value.render() and "ghost" in info.value.render()


def test_repo_solution_plans_its_three_modules(repo_root: Path) -> None:
    template = repo_root / "deployment.template.json"
    targets = plan_targets(template, cwd=repo_root, environ={}, platform="amd64").targets
    assert sorted(t.tag for t in targets) == [
        "localhost:5000/inference:0.1.0-amd64",
        "localhost:5000/monitor:0.1.0-amd64",
        "localhost:5000/sensor:0.1.0-amd64",
    ]
