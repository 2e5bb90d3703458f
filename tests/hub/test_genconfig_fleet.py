"""`edgegen genconfig --fleet fleet.yaml`: one manifest per group / device, in-process through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import CliRunner

REPO = Path(__file__).resolve().parents[2]

FLEET = """\
variables:
  SEND_INTERVAL: "1"
groups:
  prod:
    targetCondition: "tags.environment='prod'"
    priority: 10
    variables: {SEND_INTERVAL: "5"}
    devices:
      cam-001: {variables: {SEND_INTERVAL: "2"}}
      cam-002: {}
  dev:
    devices: [lab-1, lab-2]
"""


@pytest.fixture
def solution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sol = tmp_path / "sol"
    sol.mkdir()
    template = (REPO / "deployment.template.json").read_text()
    template = template.replace('"SendInterval": 1', '"SendInterval": ${SEND_INTERVAL}')
    template = template.replace('"restartPolicy": "always",\n            "startupOrder": 2',
                                '"restartPolicy": "${POLICY}",\n            "startupOrder": 2')
    assert "${SEND_INTERVAL}" in template and "${POLICY}" in template
    (sol / "deployment.template.json").write_text(template)
    shutil.copytree(REPO / ".models", sol / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    for mj in (REPO / "modules").glob("*/module.json"):
        (sol / "modules" / mj.parent.name).mkdir(parents=True)
        # a private registry with no registryCredentials: one true warning per module in every deployment
        text = mj.read_text().replace("localhost:5000/", "myacr.azurecr.io/")
        (sol / "modules" / mj.parent.name / "module.json").write_text(text)
    (sol / ".env").write_text("POLICY=always\n")
    (sol / "fleet.yaml").write_text(FLEET)
    for key in ("CONFIG_OUTPUT_DIR", "SEND_INTERVAL", "POLICY", "DOTENV_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(sol)
    return sol


def interval(path: Path) -> int:
    return json.loads(path.read_text())["modulesContent"]["sensor"]["properties.desired"]["SendInterval"]


def test_fleet_writes_a_manifest_per_deployment(solution: Path, cli: CliRunner) -> None:
    r = cli(["genconfig", "--fleet", "fleet.yaml"])
    assert r.code == 0
    out = solution / "manifests" / "fleet"  # default: <CONFIG_OUTPUT_DIR or manifests>/fleet
    assert sorted(p.name for p in out.iterdir()) == ["dev.json", "fleet-index.json", "prod-cam-001.json",
                                                    "prod.json"]
    assert (interval(out / "prod.json"), interval(out / "prod-cam-001.json"), interval(out / "dev.json")) == (5, 2, 1)
    index = json.loads((out / "fleet-index.json").read_text())
    assert index["devices"] == {"cam-001": "prod-cam-001", "cam-002": "prod", "lab-1": "dev", "lab-2": "dev"}
    assert index["deployments"]["prod-cam-001"]["priority"] == 11
    text = r.out
    assert "3 deployments (2 groups, 1 devices with their own variables) for 4 listed devices" in text
    assert "3 renders, 3 validations, 0 error(s), 9 warning(s) (3 distinct findings shown)" in text
    assert text.count("private registry myacr.azurecr.io") == 3
    assert "in 3 deployment(s): prod, prod-cam-001, dev" in text
    assert f"Wrote 3 manifests and fleet-index.json to {Path('manifests') / 'fleet'}" in text
    assert not list(out.glob(".*.tmp"))


def test_fleet_output_dir_and_json(solution: Path, cli: CliRunner) -> None:
    (solution / ".env").write_text("POLICY=always\nCONFIG_OUTPUT_DIR=config\n")
    r = cli(["genconfig", "--fleet", "fleet.yaml", "--output", "json"])
    assert r.code == 0
    data = json.loads(r.out)
    assert data["output_dir"] == str(Path("config") / "fleet") and data["written"] is True
    assert [d["name"] for d in data["deployments"]] == ["prod", "prod-cam-001", "dev"]
    assert data["renders"] == 3 and data["errors"] == 0 and data["devices"] == 4
    assert {f["deployments"] == ["prod", "prod-cam-001", "dev"] for f in data["findings"]} == {True}
    assert (solution / "config" / "fleet" / "prod-cam-001.json").is_file()
    assert cli(["genconfig", "--fleet", "fleet.yaml", "-o", "elsewhere", "--no-validate"]).code == 0
    assert interval(solution / "elsewhere" / "prod.json") == 5


def test_fleet_validation_errors(solution: Path, cli: CliRunner) -> None:
    (solution / "fleet.yaml").write_text(FLEET.replace('cam-001: {variables: {SEND_INTERVAL: "2"}}',
                                                       'cam-001: {variables: {POLICY: sometimes}}'))
    out = solution / "manifests" / "fleet"
    r = cli(["genconfig", "--fleet", "fleet.yaml", "--fail-on-validation-error"])
    assert r.code == 1
    captured = r
    assert "restartPolicy is 'sometimes'" in captured.out and "in 1 deployment(s): prod-cam-001" in captured.out
    # located in the manifest as it would be written (exact line checked below, once it is written)
    assert re.search(r"manifests/fleet/prod-cam-001\.json:\d+:\d+: error: restartPolicy", captured.out)
    assert "private registry" not in captured.out  # only errors when failing
    assert "nothing written" in captured.err and not out.exists()
    r = cli(["genconfig", "--fleet", "fleet.yaml"])
    assert r.code == 0  # without the flag: reported, written
    text = r.out
    assert "1 error(s), 9 warning(s) (4 distinct findings shown)" in text
    line = next(i for i, t in enumerate((out / "prod-cam-001.json").read_text().splitlines(), 1) if "sometimes" in t)
    assert f"prod-cam-001.json:{line}:" in text


def test_fleet_usage_and_file_errors(solution: Path, cli: CliRunner) -> None:
    r = cli(["genconfig", "--fleet", "fleet.yaml", "-P", "arm64v8"])
    assert r.code == 2
    assert "--fleet takes the template and platform from the fleet file" in r.err
    r = cli(["genconfig", "--fleet", "fleet.yaml", "--pin-digests"])
    assert r.code == 2
    assert "--pin-digests" in r.err
    (solution / "fleet.yaml").write_text("groups:\n  prod:\n    priority: 1\n    targets: x\n")
    r = cli(["genconfig", "--fleet", "fleet.yaml"])
    assert r.code == 1
    err = r.err
    assert "unknown key 'targets'" in err and "fleet.yaml:4" in err
    r = cli(["genconfig", "--fleet", "missing.yaml"])
    assert r.code == 1
    assert "cannot read the fleet file" in r.err


@pytest.mark.process
def test_genconfig_fleet_imports_no_sdk(solution: Path) -> None:
    code = (
        "import sys\n"
        "from edgegen.cli import main\n"
        "try:\n    main(['genconfig', '--fleet', 'fleet.yaml'])\nexcept SystemExit as e:\n    code = e.code\n"
        "bad = [m for m in sys.modules if m.startswith(('azure', 'docker', 'paho', 'rich'))]\n"
        "sys.stderr.write(f'CODE={code} LOADED=' + ','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=solution,
                          env=dict(os.environ), check=False)
    assert proc.stderr.strip().endswith("CODE=0 LOADED="), proc.stderr
    assert (solution / "manifests" / "fleet" / "prod.json").is_file()
