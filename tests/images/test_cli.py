"""`edgegen build` / `edgegen push` end to end, in-process, against real podman and a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from edgegen.images import default_digest_file, load_digests
from tests.images.conftest import write_module, write_solution
from tests.support.cli import CliRunner
from tests.support.registry import RegistryInfo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def solution(tmp_path: Path, registry: RegistryInfo, docker_host: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # .env is read from the working directory, as genconfig and iotedgedev do
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for var in (
        "CONTAINER_TAG",
        "BYPASS_MODULES",
        "DEFAULT_PLATFORM",
        "DEPLOYMENT_CONFIG_TEMPLATE_FILE",
        "DOTENV_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    for name in ("clia", "clib", "skipped"):
        write_module(tmp_path, name, repository="${CONTAINER_REGISTRY_SERVER}/cli/NAME")
    return write_solution(
        tmp_path,
        {"a": "${MODULES.clia}", "b": "${MODULES.clib}", "s": "${MODULES.skipped}"},
        {
            "CONTAINER_REGISTRY_SERVER": registry.host,
            "CONTAINER_REGISTRY_USERNAME": registry.username,
            "CONTAINER_REGISTRY_PASSWORD": registry.password,
            "CONTAINER_TAG": "e2e",
            "BYPASS_MODULES": "s",
            "DOCKER_HOST": docker_host,  # from .env, as iotedgedev allows
        },
    )


def test_build_push_json_records_digests_and_never_prints_the_password(
    solution: Path, registry: RegistryInfo, cli: CliRunner
) -> None:
    code, out, err = cli(["build", "--push", "-f", str(solution), "--output", "json"])
    assert code == 0, err
    data = json.loads(out)
    tags = sorted(row["tag"] for row in data["images"])
    assert tags == [f"{registry.host}/cli/clia:0.1.0-e2e-amd64", f"{registry.host}/cli/clib:0.1.0-e2e-amd64"]
    events = [json.loads(line) for line in err.splitlines()]
    assert {e["event"] for e in events} == {"build", "push"}
    assert any(e["event"] == "build" and e["kind"] == "step" for e in events)
    assert registry.password not in out + err
    recorded = load_digests(default_digest_file(solution.parent))
    for row in data["images"]:
        assert row["digest"] == recorded[row["tag"]].digest
        name, digest = row["pinned"].split("/", 1)[1].split("@")
        r = requests.head(
            f"{registry.url}/v2/{name}/manifests/{digest}",
            auth=(registry.username, registry.password),
            verify=str(registry.ca_file),
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                     "application/vnd.docker.distribution.manifest.v2+json"},
            timeout=10,
        )  # fmt: skip
        assert r.status_code == 200

    # push --no-build of one module, text output with a table
    code, out, err = cli(["push", "--no-build", "clib"])  # default template from the working directory
    assert code == 0, err
    assert "cli/clib:0.1.0-e2e-amd64" in out and "clia" not in out
    assert registry.password not in out + err


def test_wrong_password_exits_1_with_a_masked_message(
    solution: Path, registry: RegistryInfo, cli: CliRunner
) -> None:
    env = solution.parent / ".env"
    bad = "N0t-" + registry.password + "-x"
    env.write_text(env.read_text().replace(registry.password, bad))
    code, out, err = cli(["push", "-f", str(solution), "clia"])
    assert code == 1
    assert "authentication failed" in err and "CONTAINER_REGISTRY_PASSWORD" in err
    assert bad not in out + err


def test_unknown_module_is_an_error(solution: Path, cli: CliRunner) -> None:
    code, _out, err = cli(["build", "-f", str(solution), "nosuch"])
    assert code == 1 and "no module named nosuch" in err and "clia" in err


def test_genconfig_pins_pushed_digests_and_fills_registry_credentials(
    solution: Path, registry: RegistryInfo, cli: CliRunner
) -> None:
    code, _out, err = cli(["genconfig", "--pin-digests", "-o", "out"])
    assert code == 1  # nothing pushed yet: a clear error, no manifest
    assert "no pushed digest recorded" in err and "edgegen push" in err
    assert not (solution.parent / "out").exists()

    code, _out, err = cli(["push", "a"])
    assert code == 0, err
    code, _out, err = cli(["genconfig", "--pin-digests", "-o", "out"])
    assert code == 1 and "cli/clib:0.1.0-e2e-amd64" in err  # b is built from module.json but not pushed yet
    assert "skipped" not in err  # BYPASS_MODULES are not pushed by edgegen, so no digest is required for them

    code, _out, err = cli(["push", "b"])
    assert code == 0, err
    code, out, err = cli(["genconfig", "--pin-digests", "-o", "out", "--output", "json", "--registry-credentials"])
    assert code == 0, err
    recorded = load_digests(default_digest_file(solution.parent))
    manifest = json.loads((solution.parent / "out" / "deployment.amd64.json").read_text())
    desired = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
    for module, folder in (("a", "clia"), ("b", "clib")):
        digest = recorded[f"{registry.host}/cli/{folder}:0.1.0-e2e-amd64"].digest
        assert desired["modules"][module]["settings"]["image"] == f"{registry.host}/cli/{folder}@{digest}"
    assert desired["modules"]["s"]["settings"]["image"] == f"{registry.host}/cli/skipped:0.1.0-e2e-amd64"
    assert desired["runtime"]["settings"]["registryCredentials"] == {
        "127_0_0_1": {"username": registry.username, "password": registry.password, "address": registry.host}
    }
    assert registry.password not in out + err


@pytest.mark.parametrize("flags", [[], ["--no-registry-credentials"]])
def test_genconfig_by_default_keeps_iotedgedev_output(
    solution: Path, cli: CliRunner, flags: list[str]
) -> None:
    code, _out, err = cli(["genconfig", "-o", "out", *flags])
    assert code == 0, err
    manifest = json.loads((solution.parent / "out" / "deployment.amd64.json").read_text())
    assert manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"] == {
        "registryCredentials": {}
    }
