"""The CLI shell: exit codes and fast, SDK-free start-up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgegen.cli import COMMANDS
from tests.support.cli import CliRunner


def test_help_exits_zero(cli: CliRunner) -> None:
    r = cli(["--help"])
    assert r.code == 0
    out = r.out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_usage_error(cli: CliRunner) -> None:
    r = cli(["no-such-command"])
    assert r.code == 2
    assert "No such command" in r.err


@pytest.mark.process
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


def _modules_after(args: list[str], cwd: str | None = None) -> set[str]:
    code = (
        "import sys\n"
        "from edgegen.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('LOADED=' + ','.join(sorted(sys.modules)))\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd).stderr
    return set(err.rsplit("LOADED=", 1)[1].split(","))


@pytest.mark.process
def test_help_imports_only_the_command_table() -> None:
    loaded = _modules_after(["--help"])
    ours = sorted(m for m in loaded if m.startswith("edgegen"))
    assert ours == ["edgegen", "edgegen.cli"], ours  # no command module, not even edgegen.errors (dataclasses)
    assert not {"click", "dataclasses", "jsonschema", "dotenv", "jinja2", "yaml", "aiohttp"} & loaded


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_fast_help_text_is_clicks_own(width: int) -> None:
    from click.testing import CliRunner

    from edgegen.cli import cli, help_text

    out = CliRunner().invoke(cli, ["--help"], prog_name="edgegen", terminal_width=width)
    assert out.exit_code == 0 and out.output == help_text()


def test_a_narrow_terminal_gets_clicks_wrapping(monkeypatch: pytest.MonkeyPatch,
                                                cli: CliRunner) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    r = cli(["--help"])
    assert r.code == 0
    assert "Commands:" in r.out  # printed by click itself (wrapped for 60 columns)


@pytest.mark.process
def test_genconfig_of_a_valid_solution_never_imports_jsonschema(tmp_path: Path, repo_root: Path) -> None:
    shutil.copy(repo_root / "deployment.template.json", tmp_path)
    shutil.copytree(repo_root / "modules", tmp_path / "modules", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo_root / ".models", tmp_path / ".models")  # the registry behind ${MODELS.sensor-anomaly}
    loaded = _modules_after(["genconfig"], cwd=str(tmp_path))
    assert (tmp_path / "manifests" / "deployment.amd64.json").is_file()
    assert "edgegen.generator.validation.fast.edgeagent_1_1" in loaded  # validated, by the compiled schema
    assert not {"jsonschema", "edgegen.routing.compiler", "jinja2", "yaml"} & loaded


@pytest.mark.process
def test_genconfig_without_model_placeholders_never_imports_the_model_registry(tmp_path: Path) -> None:
    from edgegen.generator.scaffold import new_solution

    sol = new_solution(tmp_path / "sol")
    loaded = _modules_after(["genconfig"], cwd=str(sol))
    assert (sol / "config" / "deployment.amd64.json").is_file()
    assert not {"edgegen.models.registry", "hashlib", "jsonschema"} & loaded
