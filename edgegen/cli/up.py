"""``edgegen up``: render, start the local hub and an edge device, deploy, and watch the results arrive."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["up"]


@click.command("up")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--device-id", default="edgegen-demo", show_default=True, help="The edge device to register.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".state/up"),
              show_default=True, help="Hub and device state (SQLite stores, certificates, logs, venvs).")
@click.option("-P", "--platform", default=None, help="Platform to render for [default: from .env or amd64].")
@click.option("--hub-port", type=int, default=None,
              help="HTTPS port of the local hub [default: 443 as IoT Hub, 8443 when 443 cannot be bound].")
@click.option("--plain", is_flag=True, help="Plain lines only (no live panel), also when on a terminal.")
@click.option("--engine", type=click.Choice(["auto", "docker", "process"]), default="auto", show_default=True,
              help="docker: build the module images, push them to the registries .env names, run them as "
              "containers (Docker API at DOCKER_HOST); process: run main.py of each module folder; auto: docker "
              "when an engine answers, else process.")
def up(duration: float | None, device_id: str, state_dir: Path, platform: str | None, hub_port: int | None,
       plain: bool, engine: str) -> None:
    """The whole demo: hub, device, deployment and live results.

    Renders this solution, starts a local IoT Hub and an edge device, deploys, and streams the results. Run it
    in a solution folder (the repo itself is one). Ctrl-C or --duration stops every child cleanly.

    \b
    Examples:
      edgegen up
      edgegen up --duration 30 --plain
      edgegen up --engine docker
    """
    import asyncio
    import logging

    from edgegen.cli.runloop import stop_on_signals
    from edgegen.common import lograte
    from edgegen.orchestration.up import UpOptions, run_up

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lograte.install()
    options = UpOptions(Path.cwd(), state_dir.resolve(), device_id, duration, platform, hub_port, engine=engine)
    live = not plain and sys.stdout.isatty()

    async def main() -> None:
        stop = stop_on_signals()
        if live:
            summary = await _run_live(options, stop, run_up)
        else:
            summary = await run_up(options, stop, lambda line: click.echo(line))
        click.echo(summary.line(final=True))
        per_module = ", ".join(f"{name} {count}" for name, count in sorted(summary.by_module.items())) or "none"
        click.echo(f"results per module: {per_module}; state kept in {state_dir}")

    asyncio.run(main())


async def _run_live(options: Any, stop: Any, run_up: Any) -> Any:
    """A rich live panel (counters, msg/s, module status) under the streamed results."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = Console()

    def panel(summary: Any) -> Table:
        table = Table(title=f"edgegen up — {summary.total} results at the hub, {summary.rate():.1f} msg/s, "
                            f"{summary.anomalies} anomalies", title_justify="left")
        table.add_column("module")
        table.add_column("status")
        table.add_column("results at the hub", justify="right")
        for name, status in sorted(summary.modules.items()):
            table.add_row(name, status, str(summary.by_module.get(name, 0)))
        return table

    with Live(console=console, refresh_per_second=4, transient=True) as view:
        return await run_up(options, stop, lambda line: view.console.print(line, markup=False, highlight=False),
                            on_tick=lambda summary: view.update(panel(summary)))
