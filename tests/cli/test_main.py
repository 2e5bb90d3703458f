"""The CLI shell: exit codes and fast, SDK-free start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgegen.cli import COMMANDS, main


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["no-such-command"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_help_imports_no_sdk() -> None:
    code = (
        "import sys\n"
        "from edgegen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in sys.modules if m.startswith(('azure', 'docker', 'paho', 'rich'))]\n"
        "sys.stderr.write('LOADED=' + ','.join(bad))\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.strip().endswith("LOADED=")
