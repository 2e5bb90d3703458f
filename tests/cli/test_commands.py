"""Every command keeps the CLI's contract: help from its docstring with Examples, one --output with the same
formats everywhere, and data that parses in each machine format."""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from edgegen.cli import COMMANDS, short_help
from edgegen.cli.app import cli as group
from edgegen.cli.output import FORMATS
from tests.support.cli import CliRunner

VALID_MANIFEST = Path(__file__).parents[1] / "generator/validation/data/valid/valid-agent1.1-hub1.2.json"

#: Commands that print no data (what they print is progress or a status line), so they take no --output.
NO_OUTPUT = {
    "add": "scaffolds a module; prints what it changed",
    "new": "scaffolds a solution; prints what it created",
    "device modulecred": "prints shell assignments (--shell) for a module run by hand",
    "device run": "a long-running device; logs on stderr",
    "hub device run": "a long-running device joined to a hub; logs on stderr",
    "hub serve": "a long-running server; prints its addresses",
    "serve": "a long-running scoring server",
    "up": "the live demo (a rich panel or plain lines)",
    "model delete": "prints the versions it deleted",
    "model download": "prints the path it wrote",
}


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    if path:
        yield " ".join(path), command
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from _walk(sub, (*path, name))


ALL = dict(_walk(group))


def test_the_walk_finds_every_top_level_command() -> None:
    assert {name for name in ALL if " " not in name} == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(ALL))
def test_help_has_examples(name: str) -> None:
    text = ALL[name].help or ""
    assert "\nExamples:\n" in inspect.cleandoc(text), f"edgegen {name} --help shows no Examples: section"
    examples = inspect.cleandoc(text).split("\nExamples:\n", 1)[1].splitlines()
    assert examples and examples[0].strip().startswith(("edgegen ", "eval ", "mkdir ", "curl ")), examples[:1]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_list_shows_the_docstrings_first_line(name: str) -> None:
    """One source: `edgegen --help` reads each first line from the source; it is the command's own help."""
    first = inspect.cleandoc(ALL[name].help or "").splitlines()[0]
    assert short_help(name) == first
    assert len(f"  {'genconfig':<9}  {first}") <= 79, "too long for `edgegen --help` on 80 columns"


@pytest.mark.parametrize("name", sorted(ALL))
def test_data_commands_take_the_same_output_option(name: str) -> None:
    command = ALL[name]
    if isinstance(command, click.Group):
        return
    option = next((p for p in command.params if p.name == "output_format"), None)
    if name in NO_OUTPUT:
        assert option is None, f"{name} takes --output: drop it from NO_OUTPUT"
        return
    assert option is not None, f"edgegen {name} prints data but takes no --output"
    assert isinstance(option, click.Option) and option.opts == ["--output"]
    assert isinstance(option.type, click.Choice) and tuple(option.type.choices) == FORMATS


@pytest.fixture
def solution(tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(repo_root / "deployment.template.json", tmp_path)
    shutil.copytree(repo_root / "modules", tmp_path / "modules", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repo_root / ".models", tmp_path / ".models")
    monkeypatch.chdir(tmp_path)
    return tmp_path


OFFLINE = [
    ["validate", str(VALID_MANIFEST)],
    ["routes", "deployment.template.json"],
    ["route", "test", "$body.temp > 30", "--body", '{"temp": 35}'],
    ["genconfig"],
    ["model", "list"],
    ["model", "show", "sensor-anomaly"],
    ["model", "verify", "sensor-anomaly"],
]


@pytest.mark.parametrize("args", OFFLINE, ids=lambda a: " ".join(a[:2]))
def test_every_format_of_an_offline_command(args: list[str], solution: Path, cli: CliRunner) -> None:
    runs = {fmt: cli([*args, "--output", fmt]) for fmt in FORMATS}
    for fmt, result in runs.items():
        assert result.code == 0, (fmt, result.err)
        assert result.out.strip(), f"{fmt}: nothing printed"
    data = runs["json"].json()
    assert data == yaml.safe_load(runs["yaml"].out)  # the same data
    assert runs["table"].out != runs["json"].out
