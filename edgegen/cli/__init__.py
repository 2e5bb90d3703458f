"""The `edgegen` command: a thin shell over the library.

Sub-commands live in one module per area (``edgegen.cli.<area>``) and are imported only when invoked,
so ``edgegen --help`` and ``edgegen genconfig`` never import the Azure or Docker SDKs.
Exit codes: 0 success, 1 validation/runtime failure (any EdgegenError), 2 usage error, 130 Ctrl-C.
"""

from __future__ import annotations

import importlib
import sys
from enum import IntEnum
from typing import Any

import click

__all__ = ["COMMANDS", "ExitStatus", "cli", "main"]


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

_HELP: dict[str, str] = {
    "new": "Create a new IoT Edge solution folder.",
    "add": "Add a module to the solution.",
    "genconfig": "Render deployment templates into manifests/.",
    "validate": "Validate a deployment manifest offline.",
    "route": "Test a route or condition against a message.",
    "routes": "Draw a manifest's message flow (text, mermaid, dot).",
    "build": "Build module images with the Docker SDK.",
    "push": "Push module images to their registries.",
    "device": "Run and inspect a local edge device.",
    "hub": "The local IoT Hub stand-in.",
    "deploy": "Deploy a manifest to a device or at scale.",
    "monitor": "Show device-to-cloud messages as they arrive.",
    "up": "The whole demo: hub, device, deployment and live results.",
    "serve": "Host an Azure ML entry script over HTTP, like azmlinfsrv.",
    "model": "Register, list, download, convert models (no Azure).",
    "profile": "Measure a scoring host under load; recommend cpu and memory.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, _HELP.get(name, "")) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
@click.version_option(package_name="edgegen")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """edgegen: Azure IoT Edge solutions, offline first."""
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; map exceptions to messages and exit codes (see ExitStatus)."""
    args = sys.argv[1:] if argv is None else argv
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
