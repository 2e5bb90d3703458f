"""`edgegen validate MANIFEST [--output json]`, run in-process through edgegen.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import CliRunner

DATA = Path(__file__).parent / "data"

pytestmark = pytest.mark.e2e


def test_valid_manifest_exits_zero(cli: CliRunner) -> None:
    path = DATA / "valid/valid-agent1.1-hub1.2.json"
    code, out, _ = cli(["validate", str(path)])
    assert code == 0
    assert f"{path}: valid (0 error(s)" in out
    assert "invalid" not in out


def test_errors_exit_one_with_file_line_column_caret_and_hint(cli: CliRunner) -> None:
    path = DATA / "schema/agent-module-restartPolicy.json"
    code, out, _ = cli(["validate", str(path)])
    assert code == 1
    lines = path.read_text().split("\n")
    line_no = next(i for i, line in enumerate(lines, 1) if "on-failured" in line)
    col = lines[line_no - 1].index('"restartPolicy"') + 1
    assert f"{path}:{line_no}:{col}: error: restartPolicy is 'on-failured'" in out
    assert "at modulesContent.$edgeAgent.properties.desired.modules.monitor.restartPolicy" in out
    assert f"    | {lines[line_no - 1]}\n    | {' ' * (col - 1)}^" in out
    assert "hint: did you mean 'on-failure'?" in out
    assert "invalid (1 error(s)" in out


def test_json_output(cli: CliRunner) -> None:
    path = DATA / "semantic/createOptions-not-json.json"
    code, out, _ = cli(["validate", str(path), "--output", "json"])
    assert code == 1
    report = json.loads(out)
    assert report["file"] == str(path) and report["valid"] is False
    assert report["counts"]["error"] == 1
    (err,) = [f for f in report["findings"] if f["severity"] == "error"]
    assert set(err) == {"severity", "path", "message", "hint", "file", "line", "column", "rule"}
    assert err["path"].endswith("modules.sensor.settings.createOptions")
    assert err["rule"] == "create-options" and err["line"] > 1 and err["column"] > 1


def test_warnings_only_exit_zero(cli: CliRunner) -> None:
    code, out, _ = cli(["validate", str(DATA / "semantic/private-registry-no-credentials.json"), "--output", "json"])
    report = json.loads(out)
    assert code == 0 and report["valid"] is True and report["counts"]["warning"] >= 1


def test_invalid_json_names_line_and_column(tmp_path: Path, cli: CliRunner) -> None:
    bad = tmp_path / "deployment.amd64.json"
    bad.write_text('{\n  "modulesContent": {\n    "$edgeAgent": {,\n  }\n}\n')
    code, out, _ = cli(["validate", str(bad)])
    assert code == 1
    assert f"{bad}:3:20: error: invalid JSON: Expecting property name" in out
    assert '    |     "$edgeAgent": {,\n    |                    ^' in out


def test_unrendered_template_is_explained(cli: CliRunner, repo_root: Path) -> None:
    code, out, _ = cli(["validate", str(repo_root / "deployment.template.json")])
    assert code == 1
    assert "still holds the placeholder ${MODULES.sensor}" in out
    assert "edgegen genconfig" in out


def test_missing_file_is_an_error_not_a_crash(tmp_path: Path, cli: CliRunner) -> None:
    code, _, err = cli(["validate", str(tmp_path / "nope.json")])
    assert code == 1
    assert "cannot read manifest" in err and "hint:" in err


def test_bad_output_format_is_a_usage_error(cli: CliRunner) -> None:
    code, _, err = cli(["validate", str(DATA / "valid/valid-agent1.1-hub1.2.json"), "--output", "xml"])
    assert code == 2 and "xml" in err


def test_layered_deployment(conformance_dir: Path, tmp_path: Path, cli: CliRunner) -> None:
    path = conformance_dir / "schemas/payloads/test_edge_deployment_layered.json"
    code, out, _ = cli(["validate", str(path), "--output", "json"])
    report = json.loads(out)
    assert code == 0 and report["valid"]
    # a bad layered fragment is checked against the module definition and located in the file
    layered = json.loads(path.read_text())
    agent = layered["content"]["modulesContent"]["$edgeAgent"]
    agent["properties.desired.modules.mymodule0"]["restartPolicy"] = "sometimes"
    agent["properties.desired.modules.bad#name"] = {"type": "docker"}
    bad = tmp_path / "layered.json"
    bad.write_text(json.dumps(layered, indent=2))
    code, out, _ = cli(["validate", str(bad), "--output", "json"])
    report = json.loads(out)
    assert code == 1
    errors = {f["path"]: f for f in report["findings"] if f["severity"] == "error"}
    rp = "content.modulesContent.$edgeAgent.properties.desired.modules.mymodule0.restartPolicy"
    assert errors[rp]["line"] is not None and "sometimes" in errors[rp]["message"]
    assert "content.modulesContent.$edgeAgent.properties.desired.modules.bad#name" in errors


def test_strict_fails_on_warnings_but_not_on_infos(tmp_path: Path, cli: CliRunner) -> None:
    manifest = json.loads((DATA / "valid/valid-agent1.1-hub1.2.json").read_text())
    agent = manifest["modulesContent"]["$edgeAgent"]["properties.desired"]
    agent["systemModules"]["edgeAgent"]["settings"]["createOptions"] = ""  # an info only
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest, indent=2))
    assert cli(["validate", "--strict", str(path)])[0] == 0
    agent["modules"]["monitor"]["env"] = {"LEVEL": {"value": "${LOG_LEVEL}"}}  # a warning: left unexpanded
    path.write_text(json.dumps(manifest, indent=2))
    assert cli(["validate", str(path)])[0] == 0
    code, out, err = cli(["validate", "--strict", str(path)])
    assert code == 1 and "${LOG_LEVEL} was left in the manifest unexpanded" in out
    assert "--strict: 1 warning(s) fail the validation" in err
