"""The bad inputs of issue 15, run through the CLI as a user would: each gets a clear error (exit 1, the file and
position or the limit named, no traceback) in bounded time. ``TIMEOUT`` is a hang guard, not a speed claim.

The 300 KB telemetry message is refused by the gateways: tests/security/test_message_size.py (paho). The REST
API's bodies: tests/local/hubstandin/test_rest_fuzz.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgegen.generator.scaffold import new_solution
from tests.support.attacks import ALIAS_BOMB
from tests.support.cli import CliRunner

TIMEOUT = 120  # seconds before a command counts as hung



def edgegen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "edgegen", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, check=False)


def refused(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out, out
    for text in expected:
        assert text in out, out
    return out


@pytest.fixture(scope="module")
def solution(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_solution(tmp_path_factory.mktemp("bad") / "sol", module="sensor")


def test_yaml_alias_bomb_is_refused(solution: Path) -> None:
    assert len(ALIAS_BOMB.encode()) <= 400
    (solution / "bomb.template.yaml").write_text(ALIAS_BOMB)
    refused(edgegen(solution, "genconfig", "-f", "bomb.template.yaml"),
            "bomb.template.yaml:", "expands to more than 1,000,000 values through its aliases")


def test_jinja_range_and_nested_loops_are_bounded(solution: Path) -> None:
    (solution / "range.template.json.j2").write_text(
        '{# a huge range #}\n{"modulesContent": {}}\n{% for i in range(10**9) %}{% endfor %}\n')
    refused(edgegen(solution, "genconfig", "-f", "range.template.json.j2"),
            "range.template.json.j2:3", "range() of 1,000,000,000 items; the sandbox allows 100,000")
    (solution / "loops.template.json.j2").write_text(
        "{# nested loops #}\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n")
    refused(edgegen(solution, "genconfig", "-f", "loops.template.json.j2"),
            "loops.template.json.j2:2", "Jinja2 limit:")


def test_deep_json_and_lone_surrogates_are_refused_with_their_position(solution: Path) -> None:
    (solution / "deep.json").write_text("[" * 50_000 + "]" * 50_000)
    refused(edgegen(solution, "validate", "deep.json"), "deep.json:1:101", "nested deeper than 100 levels")

    manifest = json.loads((solution / "deployment.template.json").read_text())
    manifest["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"]["loggingOptions"] = "\ud800"
    (solution / "surrogate.template.json").write_text(json.dumps(manifest, indent=2))  # written as \ud800
    line = next(n for n, text in enumerate(json.dumps(manifest, indent=2).splitlines(), 1) if "\\ud800" in text)
    refused(edgegen(solution, "genconfig", "-f", "surrogate.template.json"),
            f"surrogate.template.json:{line}:", "lone surrogate \\ud800")

    (solution / "message.json").write_text('{"properties": {"a": "\\udc00"}}')
    refused(edgegen(solution, "route", "test", "true", "--message", "message.json"),
            "message.json:1:23", "lone surrogate \\udc00")


def test_a_300_character_module_name_is_refused(solution: Path) -> None:
    refused(edgegen(solution, "add", "m" * 300), "300 characters long; IoT Hub allows at most 128")
    assert sorted(p.name for p in (solution / "modules").iterdir()) == ["sensor"]


@pytest.mark.parametrize("device", ["a/b", "x" * 129, "caf\u00e9", "a b"])
def test_hub_device_create_refuses_ids_iot_hub_refuses(device: str, cli: CliRunner) -> None:
    cs = "HostName=127.0.0.1:9;SharedAccessKeyName=iothubowner;SharedAccessKey=" + "A" * 43 + "="
    code, _, err = cli(["hub", "device", "create", device, "--hub-connection-string", cs])
    assert code == 1, err
    assert "the device id" in err and "IoT Hub" in err and "Traceback" not in err
