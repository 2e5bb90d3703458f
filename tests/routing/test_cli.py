"""`edgegen route test` and `edgegen routes`, run in-process through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgegen.cli import main

pytestmark = pytest.mark.e2e


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


ROUTE = ("FROM /messages/modules/sensor/outputs/* WHERE $body.temp > 30 AND units = 'C' "
         "INTO BrokeredEndpoint(\"/modules/inference/inputs/input1\")")
SRC = "/messages/modules/sensor/outputs/temperatureOutput"


def test_routed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["route", "test", ROUTE, "--body", '{"temp": 31}', "--prop", "units=C", "--source", SRC],
                       capsys)
    assert code == 0
    assert out.startswith('ROUTED to BrokeredEndpoint("/modules/inference/inputs/input1")')


def test_not_routed_names_the_false_part(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["route", "test", ROUTE, "--body", '{"temp": 25}', "--prop", "units=C", "--source", SRC],
                       capsys)
    assert code == 1  # not routed: exit 1, like grep
    assert "NOT ROUTED: the condition is false" in out
    assert "because '$body.temp > 30' is false" in out
    assert "$body.temp  =>  25" in out


def test_undefined_names_the_absent_property(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["route", "test", "as_number(level) > 3 OR alert = 'yes'", "--prop", "level=2"], capsys)
    assert "the condition is undefined" in out
    assert "('alert' is undefined" in out


def test_wrong_source(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["route", "test", ROUTE, "--source", "/messages/modules/other/outputs/x"], capsys)
    assert "NOT ROUTED: the message comes from /messages/modules/other/outputs/x" in out


def test_message_file_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = tmp_path / "m.json"
    msg.write_text(json.dumps({"properties": {"units": "C"},
                               "systemProperties": {"connectionModuleId": "sensor", "outputName": "o"},
                               "body": {"temp": 40}}))
    code, out, _ = run(["route", "test", ROUTE, "--message", str(msg), "--output", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["routed"] is True and data["source"] == "/messages/modules/sensor/outputs/o"


def test_body_not_json_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["route", "test", "$body.a = 1", "--sys", "contentType=text/plain"], capsys)
    assert "note: $body is undefined for this message: contentType is 'text/plain'" in out


def test_errors_exit_1_with_caret(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["route", "test", "temp > 3"], capsys)
    assert code == 1
    assert "needs two values of the same type" in err and "^" in err and "as_number" in err
    code, _, err = run(["route", "test", "x = 1", "--prop", "novalue"], capsys)
    assert code == 2


def test_bad_message_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"properties": ')
    code, _, err = run(["route", "test", "x = '1'", "--message", str(bad)], capsys)
    assert code == 1 and f"{bad}:1:" in err


def test_routes_command_formats(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = str(repo_root / "deployment.template.json")
    code, out, _ = run(["routes", manifest], capsys)
    assert code == 0 and "sensorToInference: sensor.temperatureOutput -> inference/input1" in out
    assert "lint:" not in out
    code, out, _ = run(["routes", manifest, "--format", "mermaid"], capsys)
    assert code == 0 and out.startswith("flowchart LR")
    code, out, _ = run(["routes", manifest, "--format", "dot"], capsys)
    assert code == 0 and out.startswith("digraph routes {")


def test_routes_text_includes_lint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m.json"
    m.write_text(json.dumps({"modulesContent": {
        "$edgeAgent": {"properties.desired": {"modules": {"a": {}}}},
        "$edgeHub": {"properties.desired": {"routes": {
            "r": "FROM /messages INTO BrokeredEndpoint('/modules/b/inputs/i')"}}},
    }}))
    code, out, _ = run(["routes", str(m)], capsys)
    assert code == 0
    assert "lint:" in out and "warning: modulesContent.$edgeHub.properties.desired.routes.r" in out


def test_routes_json_output(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["routes", str(repo_root / "deployment.template.json"), "--output", "json"], capsys)
    data = json.loads(out)
    assert code == 0 and {"sensor", "inference", "monitor"} <= set(data["modules"])
    edge = next(e for e in data["edges"] if e["route"] == "sensorToInference")
    ports = {p["id"]: p for p in data["ports"]}
    assert ports[edge["source"]]["module"] == "sensor" and ports[edge["target"]]["label"] == "input1"
    assert data["problems"] == [] and isinstance(data["lint"], list)
