"""``edgegen up``: render, start the local hub and an edge device, deploy, and watch the results arrive."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["up"]


@click.command("up")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
@click.option("--device-id", default="edgegen-demo", show_default=True, help="The edge device to register.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".state/up"),
              show_default=True, help="Hub and device state (SQLite stores, certificates, logs, venvs).")
@click.option("-P", "--platform", default=None, help="Platform to render for [default: from .env or amd64].")
@click.option("--hub-port", type=int, default=8443, show_default=True, help="HTTPS port of the local hub.")
def up(duration: float | None, device_id: str, state_dir: Path, platform: str | None, hub_port: int) -> None:
    """The whole demo: render this solution, start a local IoT Hub and an edge device, deploy, stream results.

    Run it in a solution folder (the repo itself is one). Ctrl-C or --duration stops every child cleanly.
    """
    import asyncio
    import contextlib
    import logging
    import signal

    from edgegen.hub.up import UpOptions, run_up

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = UpOptions(Path.cwd(), state_dir.resolve(), device_id, duration, platform, hub_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        summary = await run_up(options, stop, lambda line: click.echo(line))
        click.echo(summary.line().replace("[summary]", "[done]"))
        click.echo(f"per module: {dict(summary.by_module)}; state kept in {state_dir}")

    asyncio.run(main())
