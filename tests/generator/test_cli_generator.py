"""edgegen new / add / genconfig through the CLI entry point: exit codes, messages, SDK-free start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import CliRunner

pytestmark = pytest.mark.e2e
SETTINGS = ("CONTAINER_REGISTRY_SERVER", "CONFIG_OUTPUT_DIR", "DEFAULT_PLATFORM", "DEPLOYMENT_CONFIG_FILE",
            "DEPLOYMENT_CONFIG_TEMPLATE_FILE", "MODULES_PATH", "CONTAINER_TAG", "DOTENV_FILE")


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_new_add_genconfig(cwd: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(["new", "sol", "-m", "sensor", "-t", "sensor"]).code == 0
    monkeypatch.chdir(cwd / "sol")
    assert cli(["add", "inference", "--template", "inference"]).code == 0
    assert cli(["add", "monitor", "-t", "monitor"]).code == 0
    r = cli(["genconfig", "--output", "json"])
    assert r.code == 0
    report = json.loads(r.out)
    assert report["output"] == "config/deployment.amd64.json" and report["written"]
    assert report["images"] == {m: f"localhost:5000/{m}:0.0.1-amd64" for m in ("sensor", "inference", "monitor")}
    assert report["validation"]["valid"] is True
    r = cli(["genconfig", "-f", "deployment.debug.template.json", "-P", "amd64", "-o", "out"])
    assert r.code == 0
    out = r.out
    assert "Expanding 'deployment.debug.template.json' to 'out/deployment.debug.amd64.json'" in out
    debug = json.loads((cwd / "sol" / "out" / "deployment.debug.amd64.json").read_text())
    sensor = debug["modulesContent"]["$edgeAgent"]["properties.desired"]["modules"]["sensor"]["settings"]
    assert sensor["image"] == "localhost:5000/sensor:0.0.1-amd64.debug"
    assert json.loads(sensor["createOptions"])["HostConfig"]["PortBindings"] == {"5678/tcp": [{"HostPort": "5678"}]}


@pytest.mark.parametrize(("name", "message"), [
    ("_sensor", "Module name cannot start or end with the symbol _"),
    ("sensor_", "Module name cannot start or end with the symbol _"),
    ("my-module", "Module name can only contain alphanumeric characters and the symbol _"),
    ("filtermodule", 'Module "filtermodule" already exists under'),
])
def test_add_rejects_bad_names(cwd: Path, cli: CliRunner, name: str, message: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(["new", "sol"]).code == 0
    monkeypatch.chdir(cwd / "sol")
    before = (cwd / "sol" / "deployment.template.json").read_text()
    r = cli(["add", name])
    assert r.code == 1
    assert message in r.err
    assert (cwd / "sol" / "deployment.template.json").read_text() == before


def test_usage_errors_exit_2(cwd: Path, cli: CliRunner) -> None:
    assert cli(["add", "x", "--template", "cobol"]).code == 2
    assert cli(["genconfig", "--no-such-flag"]).code == 2
    assert cli(["new"]).code == 2


def test_genconfig_failures_exit_1(cwd: Path, cli: CliRunner,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    r = cli(["genconfig"])
    assert r.code == 1
    assert 'template file "deployment.template.json" not found' in r.err
    assert cli(["new", "sol"]).code == 0
    monkeypatch.chdir(cwd / "sol")
    tpl = cwd / "sol" / "deployment.template.json"
    tpl.write_text(tpl.read_text().replace('"v1.25"', '"$DOCKER_MIN"'))
    r = cli(["genconfig"])
    assert r.code == 1
    err = r.err
    line = next(i for i, ln in enumerate(tpl.read_text().splitlines(), 1) if "$DOCKER_MIN" in ln)
    assert f"deployment.template.json:{line}:" in err and "$DOCKER_MIN is not set" in err and "^" in err
    r = cli(["genconfig", "--allow-unresolved"])
    assert r.code == 0
    assert "warning:" in r.out
    data = json.loads(tpl.read_text())
    data["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]["bad"] = "FROM /messages INTO nowhere"
    tpl.write_text(json.dumps(data))
    os.environ["DOCKER_MIN"] = "v1.25"
    try:
        r = cli(["genconfig", "--fail-on-validation-error"])
        assert r.code == 1
        captured = r
        assert "error:" in captured.out and "validation failed" in captured.err
        assert cli(["genconfig"]).code == 0  # without the flag, findings are only reported
    finally:
        del os.environ["DOCKER_MIN"]


def test_genconfig_imports_no_sdk(tmp_path: Path) -> None:
    (tmp_path / "deployment.template.json").write_text(json.dumps({"$schema-template": "4.0.0", "modulesContent": {
        "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1", "modules": {}}},
        "$edgeHub": {"properties.desired": {"schemaVersion": "1.2", "routes": {}}}}}))
    code = (
        "import sys\n"
        "from edgegen.cli import main\n"
        "try:\n    main(['genconfig'])\nexcept SystemExit as e:\n    code = e.code\n"
        "bad = [m for m in sys.modules if m.startswith(('azure', 'docker', 'paho', 'rich'))]\n"
        "sys.stderr.write(f'CODE={code} LOADED=' + ','.join(bad))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          check=False)
    assert proc.stderr.strip().endswith("CODE=0 LOADED="), proc.stderr
    assert (tmp_path / "manifests" / "deployment.amd64.json").is_file()
