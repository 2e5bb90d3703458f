"""The ``cli`` fixture's runner: ``edgegen`` in process, as ``edgegen.cli.main`` runs it (exit codes included)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

__all__ = ["CliResult", "CliRunner", "make_runner"]


class CliResult(NamedTuple):
    """Exit code, stdout and stderr of one run (``code, out, err = cli([...])`` unpacks it)."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON (``--output json``)."""
        return json.loads(self.out)


CliRunner = Callable[[list[str]], CliResult]


def make_runner(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``edgegen ARGS`` through ``main`` (its exception-to-exit-code mapping), capturing what it printed."""

    def run(args: list[str]) -> CliResult:
        from edgegen.cli import main

        capsys.readouterr()  # only this run's output
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        captured = capsys.readouterr()
        return CliResult(int(exc.value.code or 0), captured.out, captured.err)

    return run
