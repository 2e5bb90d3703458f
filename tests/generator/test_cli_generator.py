"""edgegen new / add / genconfig through the CLI entry point: exit codes, messages, SDK-free start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgegen.cli import main

pytestmark = pytest.mark.e2e
SETTINGS = ("CONTAINER_REGISTRY_SERVER", "CONFIG_OUTPUT_DIR", "DEFAULT_PLATFORM", "DEPLOYMENT_CONFIG_FILE",
            "DEPLOYMENT_CONFIG_TEMPLATE_FILE", "MODULES_PATH", "CONTAINER_TAG", "DOTENV_FILE")


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in SETTINGS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_new_add_genconfig(cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["new", "sol", "-m", "sensor", "-t", "sensor"]) == 0
    monkeypatch.chdir(cwd / "sol")
    assert run(["add", "inference", "--template", "inference"]) == 0
    assert run(["add", "monitor", "-t", "monitor"]) == 0
    capsys.readouterr()
    assert run(["genconfig", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output"] == "config/deployment.amd64.json" and report["written"]
    assert report["images"] == {m: f"localhost:5000/{m}:0.0.1-amd64" for m in ("sensor", "inference", "monitor")}
    assert report["validation"]["valid"] is True
    assert run(["genconfig", "-f", "deployment.debug.template.json", "-P", "amd64", "-o", "out"]) == 0
    out = capsys.readouterr().out
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
def test_add_rejects_bad_names(cwd: Path, capsys: pytest.CaptureFixture[str], name: str, message: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["new", "sol"]) == 0
    monkeypatch.chdir(cwd / "sol")
    before = (cwd / "sol" / "deployment.template.json").read_text()
    capsys.readouterr()
    assert run(["add", name]) == 1
    assert message in capsys.readouterr().err
    assert (cwd / "sol" / "deployment.template.json").read_text() == before


def test_usage_errors_exit_2(cwd: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["add", "x", "--template", "cobol"]) == 2
    assert run(["genconfig", "--no-such-flag"]) == 2
    assert run(["new"]) == 2


def test_genconfig_failures_exit_1(cwd: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["genconfig"]) == 1
    assert 'template file "deployment.template.json" not found' in capsys.readouterr().err
    assert run(["new", "sol"]) == 0
    monkeypatch.chdir(cwd / "sol")
    tpl = cwd / "sol" / "deployment.template.json"
    tpl.write_text(tpl.read_text().replace('"v1.25"', '"$DOCKER_MIN"'))
    capsys.readouterr()
    assert run(["genconfig"]) == 1
    err = capsys.readouterr().err
    line = next(i for i, ln in enumerate(tpl.read_text().splitlines(), 1) if "$DOCKER_MIN" in ln)
    assert f"deployment.template.json:{line}:" in err and "$DOCKER_MIN is not set" in err and "^" in err
    assert run(["genconfig", "--allow-unresolved"]) == 0
    assert "warning:" in capsys.readouterr().out
    data = json.loads(tpl.read_text())
    data["modulesContent"]["$edgeHub"]["properties.desired"]["routes"]["bad"] = "FROM /messages INTO nowhere"
    tpl.write_text(json.dumps(data))
    os.environ["DOCKER_MIN"] = "v1.25"
    try:
        assert run(["genconfig", "--fail-on-validation-error"]) == 1
        captured = capsys.readouterr()
        assert "error:" in captured.out and "validation failed" in captured.err
        assert run(["genconfig"]) == 0  # without the flag, findings are only reported
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
