"""``edgegen device …``: run a deployment as a local edge device and inspect it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from edgegen.cli.hub import DEVICE_CS_ENV
from edgegen.cli.output import emit, output_option, render_record, table
from edgegen.cli.secrets import secret_option

__all__ = ["device"]

DEFAULT_STATE = Path(".state") / "device"
_state_option = click.option(
    "--state-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True,
    help="Where the device keeps certs, stores, logs and venvs.",
)


engine_option = click.option(
    "--engine", type=click.Choice(["auto", "docker", "process"]), default="auto", show_default=True,
    help="Where modules run: docker = the manifest's images as containers on the Docker API at DOCKER_HOST "
    "(podman's socket too), as edgeAgent runs them; process = main.py from the solution's module folders; "
    "auto = docker when an engine answers, else process (the device says which).",
)


@click.group(name="device")
def device() -> None:
    """Run and inspect a local edge device.

    Modules run as processes or containers, beside a local edge hub; no Azure needed.

    \b
    Examples:
      edgegen device run
      edgegen device status
      edgegen device messages --follow --output text
    """


@device.command()
@click.option("--manifest", "-m", type=click.Path(dir_okay=False, path_type=Path),
              help="A deployment manifest [default: render this solution's template first, like edgegen "
              "genconfig, into CONFIG_OUTPUT_DIR (config/ in a new solution) or manifests/].")
@secret_option("--connection-string", "device_cs", env=DEVICE_CS_ENV,
               help="Instead of --manifest: join an IoT Hub as this edge device (deployment from its twins, "
               "$upstream to the hub); see 'edgegen hub device run'.")
@click.option("--hub-ca-file", type=click.Path(dir_okay=False), help="With --connection-string: the hub's CA.")
@_state_option
@click.option("--address", help="127.x address for the edge hub's port 8883 (default: a free one).")
@click.option("--solution", type=click.Path(file_okay=False, path_type=Path),
              help="Solution folder holding modules/<folder> (default: found from the manifest).")
@click.option("--device-id", default="edgegen-device", show_default=True)
@click.option("--reuse-site-packages", is_flag=True,
              help="Module venvs see this interpreter's packages, so satisfied requirements install nothing.")
@click.option("--venv-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where module venvs live (default: <state-dir>/venvs); share one between state dirs.")
@click.option("--backoff-unit", type=float, default=10.0, show_default=True,
              help="Restart cool-off unit in seconds (edgeAgent: 10 s, doubling per restart, at most 300 s).")
@engine_option
@click.option("--fast-ack", is_flag=True,
              help="Acknowledge module messages before their hand-over is committed to disk (grouped every 20 ms; "
              "about twice the throughput, but a crash of the device process can lose the last 20 ms).")
@click.option("--retention-days", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Keep $upstream messages (upstream.sqlite) this long.")
@click.option("--retention-mb", type=click.FloatRange(min=0.01), default=256.0, show_default=True,
              help="Keep at most this many MB of $upstream messages (oldest go first).")
@click.pass_context
def run(ctx: click.Context, manifest: Path | None, device_cs: str | None, hub_ca_file: str | None, state_dir: Path,
        address: str | None, solution: Path | None, device_id: str, reuse_site_packages: bool,
        venv_dir: Path | None, backoff_unit: float, engine: str, fast_ack: bool, retention_days: float,
        retention_mb: float) -> None:
    """Start the edge hub and every module of a manifest; Ctrl-C or SIGTERM stops everything.

    Without --manifest (and --connection-string), renders the solution in the current folder first, as
    `edgegen genconfig` does, and runs what it wrote.

    \b
    Examples:
      edgegen device run
      edgegen device run --manifest manifests/deployment.amd64.json --engine process
      edgegen device run --connection-string "$DEVICE_CS"
    """
    import asyncio
    import logging

    from edgegen.cli.runloop import stop_on_signals

    if manifest is not None and device_cs is not None:
        raise click.UsageError(f"give either --manifest FILE or --connection-string(-file) / {DEVICE_CS_ENV}, "
                               "not both")
    if manifest is None and device_cs is None:
        from edgegen.pipeline import genconfig

        rendered = genconfig(fail_on_validation_error=True)
        manifest = Path(rendered.output_path)
        click.echo(f"rendered {manifest} (edgegen genconfig)", err=True)
    if device_cs is not None:
        from edgegen.cli.hub import device_run

        ctx.invoke(device_run, device_cs=device_cs, solution=solution or Path("."), device_state_dir=state_dir,
                   ca_file=hub_ca_file, state_dir=None, address=address, engine=engine)
        return

    from edgegen.common import lograte
    from edgegen.common.retention import Retention
    from edgegen.local.agent import BackoffPolicy
    from edgegen.local.device import Device, DeviceConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lograte.install()
    config = DeviceConfig(state_dir=state_dir, manifest=manifest, solution_dir=solution, address=address,
                          device_id=device_id, share_site_packages=reuse_site_packages, venv_dir=venv_dir,
                          backoff=BackoffPolicy(unit_secs=backoff_unit), durable_ack=not fast_ack, engine=engine,
                          upstream_retention=Retention(retention_days, int(retention_mb * 1024 * 1024)))

    async def main() -> None:
        stop = stop_on_signals()
        dev = Device(config)
        click.echo(f"starting edge device {device_id!r}: edge hub on {dev.address}:8883, state in {dev.state}",
                   err=True)
        click.echo(dev.engine_choice.reason, err=True)
        async with dev:
            names = ", ".join(dev.agent.status()) or "no modules"
            click.echo(f"running {names}; Ctrl-C stops", err=True)
            await stop.wait()
            click.echo("stopping modules and the edge hub…", err=True)

    asyncio.run(main())


@device.command()
@_state_option
@output_option()
def status(state_dir: Path, output_format: str) -> None:
    """Modules (runtime status, exit code, restarts) and endpoint queues of the running device.

    \b
    Examples:
      edgegen device status
      edgegen device status --output json
    """
    from edgegen.local.control import ControlClient

    data = ControlClient(state_dir).status()
    rows = [{"module": name, **m} for name, m in data["modules"].items()]
    queues: dict[str, dict[str, int]] = {}
    for endpoint, counts in data.get("endpoints", {}).items():  # "<module>/<input>" (and "$upstream")
        q = queues.setdefault(endpoint.split("/", 1)[0], {"queued": 0, "delivered": 0})
        q["queued"] += int(counts.get("pending", 0) or 0)
        q["delivered"] += int(counts.get("delivered", 0) or 0)
    for row in rows:
        row["connected"] = "yes" if row["module"] in data.get("connected", []) else "no"
        row.update(queues.get(row["module"], {"queued": 0, "delivered": 0}))
    kind = "containers" if data.get("engine") == "docker" else "processes"
    text = table(rows, ["module", "runtimeStatus", "exitCode", "restartCount", "connected", "queued", "delivered",
                        "lastStartTimeUtc", "statusDescription"], title=f"{data['deviceId']} ({data['address']}), "
                 f"edge hub {data['edgeHub']}, modules as {kind}")
    eps = [{"endpoint": ep, **v} for ep, v in data["endpoints"].items()]
    if eps:
        text += "\n" + table(eps, ["endpoint", "pending", "delivered", "expired"], title="store-and-forward")
    mb = 1024 * 1024
    stores = []
    for name, size in (data.get("stores") or {}).items():
        if isinstance(size, dict):
            stores.append({"file": name, "MB on disk": f"{size['fileBytes'] / mb:.1f}",
                           "messages": size["messages"], "retention": f"{size['retentionDays']:g} days, "
                           f"{size['retentionBytes'] / mb:g} MB"})
        else:
            stores.append({"file": name, "MB on disk": f"{size / mb:.1f}", "messages": "", "retention": ""})
    if stores:
        text += "\n" + table(stores, ["file", "MB on disk", "messages", "retention"], title="stores")
    emit(data, output_format, text, rows=rows)


@device.command()
@click.argument("module")
@_state_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output.")
@output_option()
def logs(module: str, state_dir: Path, follow: bool, output_format: str) -> None:
    """Print a module's output (--output json: one JSON object per line, {"module", "line"}).

    \b
    Examples:
      edgegen device logs sensor
      edgegen device logs inference --follow --output json
    """
    from edgegen.local.control import ControlClient

    client = ControlClient(state_dir)
    offset = 0
    stream = click.get_binary_stream("stdout")
    partial = b""
    while True:
        data, offset = client.logs(module, offset)
        if data and output_format in ("json", "yaml"):
            *lines, partial = (partial + data).split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace")
                click.echo(render_record({"module": module, "line": text}, output_format, text))
        elif data:
            stream.write(data)
            stream.flush()
        elif not follow:
            if partial and output_format in ("json", "yaml"):
                text = partial.decode("utf-8", "replace")
                click.echo(render_record({"module": module, "line": text}, output_format, text))
            return
        else:
            time.sleep(0.5)


@device.command()
@click.argument("module")
@click.argument("method")
@click.option("--payload", default="null", show_default=True, help="JSON payload of the method call.")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@_state_option
@output_option(default="json")
def invoke(module: str, method: str, payload: str, timeout: float, state_dir: Path, output_format: str) -> None:
    """Call a direct method on a module; prints {"status", "payload"}; exit 1 unless status is 2xx.

    \b
    Examples:
      edgegen device invoke '$edgeAgent' ping
      edgegen device invoke sensor SetInterval --payload '{"seconds": 2}' --timeout 10
    """
    from edgegen.local.control import ControlClient
    from edgegen.local.errors import DeviceError

    try:
        body: Any = json.loads(payload)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    result = ControlClient(state_dir).invoke(module, method, body, timeout)
    emit(result, output_format, f"status {result.get('status')}\n{json.dumps(result.get('payload'), indent=2)}")
    if not 200 <= int(result.get("status", 500)) < 300:
        raise DeviceError(f"method {method!r} on {module!r} answered {result.get('status')}")


@device.command()
@_state_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing messages as they arrive.")
@click.option("--after", type=int, default=0, help="Only messages after this sequence number.")
@output_option(default="json")
def messages(state_dir: Path, follow: bool, after: int, output_format: str) -> None:
    """Print the device's $upstream messages.

    JSON lines like az iot hub monitor-events (--output json, the default), YAML documents, or one readable
    line each (--output text or table).

    \b
    Examples:
      edgegen device messages
      edgegen device messages --follow --output text
      edgegen device messages --after 120 --output yaml
    """
    from edgegen.local.control import ControlClient

    client = ControlClient(state_dir)
    while True:
        batch = client.messages(after)
        for event in batch:
            click.echo(render_record(event, output_format, _message_line(event)))
            after = event["seq"]
        if not batch:
            if not follow:
                return
            time.sleep(0.5)


def _message_line(event: dict[str, Any]) -> str:
    inner = event.get("event", {}) if isinstance(event.get("event"), dict) else {}
    payload = inner.get("payload")
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    origin = "/".join(p for p in (inner.get("origin"), inner.get("module")) if p) or "?"
    return f"{event.get('seq')} {origin}: {text}"


@device.command()
@click.argument("module")
@_state_option
@click.option("--shell", "as_shell", is_flag=True, help="Print export lines for a POSIX shell.")
def modulecred(module: str, state_dir: Path, as_shell: bool) -> None:
    """Credentials to run MODULE by hand (e.g. under a debugger) against the running edge hub.

    Set the module's status to stopped in the manifest first, or the two copies take turns on one identity.

    \b
    Examples:
      eval "$(edgegen device modulecred sensor --shell)" && python modules/sensor/main.py
    """
    import shlex

    from edgegen.local.device import module_credentials

    cred = module_credentials(state_dir, module)
    for key, value in cred.items():
        click.echo(f"export {key}={shlex.quote(value)}" if as_shell else f"{key}={value}")
