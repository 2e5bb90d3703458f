"""The click group of the `edgegen` command: sub-commands imported on first use (see ``edgegen.cli.COMMANDS``)."""

from __future__ import annotations

import importlib

import click

from edgegen.cli import COMMANDS, DESCRIPTION, short_help

__all__ = ["LazyGroup", "cli"]


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
        # The first line of each command's docstring, without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help(name)) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, help=DESCRIPTION, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
@click.version_option(package_name="edgegen")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback
