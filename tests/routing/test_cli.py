"""`edgegen route test` and `edgegen routes`, run in-process through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import CliRunner

pytestmark = pytest.mark.e2e


ROUTE = ("FROM /messages/modules/sensor/outputs/* WHERE $body.temp > 30 AND units = 'C' "
         "INTO BrokeredEndpoint(\"/modules/inference/inputs/input1\")")
SRC = "/messages/modules/sensor/outputs/temperatureOutput"


def test_routed(cli: CliRunner) -> None:
    code, out, _ = cli(["route", "test", ROUTE, "--body", '{"temp": 31}', "--prop", "units=C", "--source", SRC])
    assert code == 0
    assert out.startswith('ROUTED to BrokeredEndpoint("/modules/inference/inputs/input1")')


def test_not_routed_names_the_false_part(cli: CliRunner) -> None:
    code, out, _ = cli(["route", "test", ROUTE, "--body", '{"temp": 25}', "--prop", "units=C", "--source", SRC])
    assert code == 1  # not routed: exit 1, like grep
    assert "NOT ROUTED: the condition is false" in out
    assert "because '$body.temp > 30' is false" in out
    assert "$body.temp  =>  25" in out


def test_undefined_names_the_absent_property(cli: CliRunner) -> None:
    _, out, _ = cli(["route", "test", "as_number(level) > 3 OR alert = 'yes'", "--prop", "level=2"])
    assert "the condition is undefined" in out
    assert "('alert' is undefined" in out


def test_wrong_source(cli: CliRunner) -> None:
    _, out, _ = cli(["route", "test", ROUTE, "--source", "/messages/modules/other/outputs/x"])
    assert "NOT ROUTED: the message comes from /messages/modules/other/outputs/x" in out


def test_message_file_and_json_output(tmp_path: Path, cli: CliRunner) -> None:
    msg = tmp_path / "m.json"
    msg.write_text(json.dumps({"properties": {"units": "C"},
                               "systemProperties": {"connectionModuleId": "sensor", "outputName": "o"},
                               "body": {"temp": 40}}))
    code, out, _ = cli(["route", "test", ROUTE, "--message", str(msg), "--output", "json"])
    data = json.loads(out)
    assert code == 0 and data["routed"] is True and data["source"] == "/messages/modules/sensor/outputs/o"


def test_body_not_json_is_explained(cli: CliRunner) -> None:
    _, out, _ = cli(["route", "test", "$body.a = 1", "--sys", "contentType=text/plain"])
    assert "note: $body is undefined for this message: contentType is 'text/plain'" in out


def test_errors_exit_1_with_caret(cli: CliRunner) -> None:
    code, _, err = cli(["route", "test", "temp > 3"])
    assert code == 1
    assert "needs two values of the same type" in err and "^" in err and "as_number" in err
    code, _, err = cli(["route", "test", "x = 1", "--prop", "novalue"])
    assert code == 2


def test_bad_message_file(tmp_path: Path, cli: CliRunner) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"properties": ')
    code, _, err = cli(["route", "test", "x = '1'", "--message", str(bad)])
    assert code == 1 and f"{bad}:1:" in err


def test_routes_command_formats(repo_root: Path, cli: CliRunner) -> None:
    manifest = str(repo_root / "deployment.template.json")
    code, out, _ = cli(["routes", manifest])
    assert code == 0 and "sensorToInference: sensor.temperatureOutput -> inference/input1" in out
    assert "lint:" not in out
    code, out, _ = cli(["routes", manifest, "--format", "mermaid"])
    assert code == 0 and out.startswith("flowchart LR")
    code, out, _ = cli(["routes", manifest, "--format", "dot"])
    assert code == 0 and out.startswith("digraph routes {")


def test_routes_text_includes_lint(tmp_path: Path, cli: CliRunner) -> None:
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"modules": {"a": {}}}},
        "$edgeHub": {"properties.desired": {"routes": {
            "r": "FROM /messages INTO BrokeredEndpoint('/modules/b/inputs/i')"}}},
    }}))
    code, out, _ = cli(["routes", str(m)])
    assert code == 0
    assert "lint:" in out and "warning: modulesContent.$edgeHub.properties.desired.routes.r" in out


def test_routes_json_output(repo_root: Path, cli: CliRunner) -> None:
    code, out, _ = cli(["routes", str(repo_root / "deployment.template.json"), "--output", "json"])
    data = json.loads(out)
    assert code == 0 and {"sensor", "inference", "monitor"} <= set(data["modules"])
    edge = next(e for e in data["edges"] if e["route"] == "sensorToInference")
    ports = {p["id"]: p for p in data["ports"]}
    assert ports[edge["source"]]["module"] == "sensor" and ports[edge["target"]]["label"] == "input1"
    assert data["problems"] == [] and isinstance(data["lint"], list)
