"""The `edgegen` command: a thin shell over the library.

Sub-commands live in one module per area (``edgegen.cli.<area>``) and are imported only when invoked,
so ``edgegen --help`` and ``edgegen genconfig`` never import the Azure or Docker SDKs. The click group itself is in
``edgegen.cli.app``; ``edgegen --help`` prints the same text from the table below without importing click at all
(``tests/cli/test_main.py`` checks the two texts are equal), which keeps it well under 60 ms.
Exit codes: 0 success, 1 validation/runtime failure (any EdgegenError), 2 usage error, 130 Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum
from typing import Any

__all__ = ["COMMANDS", "DESCRIPTION", "ExitStatus", "cli", "help_text", "main", "short_help"]


class ExitStatus(IntEnum):
    SUCCESS = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130


# command name -> "module:attribute" of a click.Command; the module is imported on first use.
COMMANDS: dict[str, str] = {
    "new": "edgegen.cli.generator:new",
    "add": "edgegen.cli.generator:add",
    "genconfig": "edgegen.cli.generator:genconfig",
    "validate": "edgegen.cli.generator:validate",
    "route": "edgegen.cli.routing:route",
    "routes": "edgegen.cli.routing:routes",
    "build": "edgegen.cli.images:build",
    "push": "edgegen.cli.images:push",
    "device": "edgegen.cli.device:device",
    "hub": "edgegen.cli.hub:hub",
    "deploy": "edgegen.cli.hub:deploy",
    "monitor": "edgegen.cli.hub:monitor",
    "up": "edgegen.cli.up:up",
    "serve": "edgegen.cli.serve:serve",
    "model": "edgegen.cli.models:model",
    "profile": "edgegen.cli.profile:profile",
}

DESCRIPTION = "edgegen: Azure IoT Edge solutions, offline first."
_OPTIONS = [("--traceback", "Show the Python traceback on errors."), ("--version", "Show the version and exit."),
            ("-h, --help", "Show this message and exit.")]


def short_help(name: str) -> str:
    """The first line of command ``name``'s docstring, read from its module's source without importing it (the
    one source of a command's help: ``edgegen --help`` lists these lines, ``edgegen NAME --help`` shows the whole
    docstring). ``tests/cli/test_commands.py`` checks each equals the imported command's first help line."""
    module, attr = COMMANDS[name].split(":")
    source = _source(module)
    start = source.index(f"\ndef {attr}(")
    doc = source.index('"""', start) + 3
    return source[doc:source.index("\n", doc)].strip()


_SOURCES: dict[str, str] = {}


def _source(module: str) -> str:
    """A command module's source text, read once (``--help`` reads each module's once, imports none)."""
    text = _SOURCES.get(module)
    if text is None:
        path = os.path.join(os.path.dirname(__file__), f"{module.rsplit('.', 1)[1]}.py")
        with open(path, encoding="utf-8") as f:
            text = _SOURCES[module] = f.read()
    return text


def help_text() -> str:
    """``edgegen --help`` as click formats it for an 80-column terminal (one line per option and command)."""

    def rows(items: list[tuple[str, str]]) -> str:
        width = max(len(first) for first, _ in items)
        return "".join(f"  {first:<{width}}  {text}\n" for first, text in items)

    return (f"Usage: edgegen [OPTIONS] COMMAND [ARGS]...\n\n  {DESCRIPTION}\n\nOptions:\n{rows(_OPTIONS)}\n"
            f"Commands:\n{rows([(name, short_help(name)) for name in sorted(COMMANDS)])}")


def _fits_help_text() -> bool:
    """Whether click would print help_text() unchanged: its lines are wrapped below 80 columns only."""
    try:
        columns = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return True  # not a terminal: click formats for 80 columns
    return columns >= 80


def __getattr__(name: str) -> Any:
    if name in ("cli", "LazyGroup"):
        from edgegen.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'edgegen.cli' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; map exceptions to messages and exit codes (see ExitStatus)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"]) and _fits_help_text():
        sys.stdout.write(help_text())
        sys.stdout.flush()
        sys.exit(ExitStatus.SUCCESS)
    import click

    from edgegen.cli.app import cli

    show_traceback = "--traceback" in args
    try:
        cli.main(args=args, prog_name="edgegen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitStatus.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:
        # edgegen.errors is imported by whatever raised an EdgegenError; not importing it here keeps --help fast
        errors = sys.modules.get("edgegen.errors")
        if show_traceback or errors is None or not isinstance(exc, errors.EdgegenError):
            raise
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(ExitStatus.FAILURE)
    sys.exit(ExitStatus.SUCCESS)
