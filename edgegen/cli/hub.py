"""``edgegen hub`` (the local stand-in, device identities), ``edgegen deploy`` and ``edgegen monitor``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgegen.cli.output import emit, output_option
from edgegen.cli.secrets import secret_option
from edgegen.errors import EdgegenError

__all__ = ["DEVICE_CS_ENV", "deploy", "hub", "monitor"]

DEVICE_CS_ENV = "IOTEDGE_DEVICE_CONNECTION_STRING"  # the edge device's connection string, off the command line


def _hub_options(fn: Any) -> Any:
    fn = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="State directory of the local stand-in (default .state/hub).")(fn)
    fn = secret_option("--hub-connection-string", "hub_cs",
                       help="IoT Hub service connection string (else IOTHUB_CONNECTION_STRING, .env, "
                            "or the running local stand-in).")(fn)
    return fn


def _client(hub_cs: str | None, state_dir: Path | None) -> Any:
    from edgegen.hub.client import HubClient
    from edgegen.hub.connection import resolve_hub

    return HubClient(resolve_hub(hub_cs, state_dir=state_dir))


def _json_option(value: str | None, name: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint=name)
    return data


@click.group("hub")
def hub() -> None:
    """The local IoT Hub stand-in and device identities.

    \b
    Examples:
      edgegen hub serve
      edgegen hub device create edge1 --edge
      edgegen hub status
    """


@hub.command("serve")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".state/hub"),
              show_default=True, help="Where the hub keeps its SQLite store, CA and hub.json.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Loopback address to bind (127.x).")
@click.option("--port", default=None, type=int,
              help="HTTPS port of the REST API [default: 443 as IoT Hub, so HostName is the bare address; 8443 "
                   "when 443 cannot be bound].")
@click.option("--no-mqtt", is_flag=True, help="Serve no device side (MQTT 8883).")
@click.option("--no-amqp", is_flag=True, help="Serve no AMQP side (5671: Event Hub-compatible stream, C2D).")
@click.option("--retention-days", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Keep device-to-cloud messages this long.")
@click.option("--retention-mb", type=click.FloatRange(min=0.01), default=256.0, show_default=True,
              help="Keep at most this many MB of device-to-cloud messages (oldest go first).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds.")
def serve(state_dir: Path, address: str, port: int | None, no_mqtt: bool, no_amqp: bool, retention_days: float,
          retention_mb: float, duration: float | None) -> None:
    """Run the local IoT Hub stand-in until Ctrl-C (REST on ADDRESS:443, MQTT on 8883, AMQP on 5671).

    \b
    Examples:
      edgegen hub serve
      edgegen hub serve --address 127.0.0.2 --retention-mb 64 --no-amqp
    """
    import asyncio
    import logging

    from edgegen.common import lograte
    from edgegen.common.sas import mask_secrets
    from edgegen.local.hubstandin.runner import run_hub

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lograte.install()

    def announce(info: Any) -> None:
        click.echo(f"local IoT Hub: https://{info.host_name}"
                   + (f"  (devices: mqtts://{info.address}:{info.mqtt_port})" if info.mqtt_port else "")
                   + (f"  (service: amqps://{info.address}:{info.amqp_port})" if info.amqp_port else ""))
        # the keys stay in hub.json (0600): commands find the hub there; a key printed would end in scrollback/logs
        hub_json = Path(state_dir) / "hub.json"
        click.echo(f"connection string: {mask_secrets(info.connection_string)}  (full: {hub_json}, 0600)")
        if info.event_hub_connection_string:
            click.echo(f"Event Hub-compatible endpoint: {mask_secrets(info.event_hub_connection_string)}")
        click.echo(f"CA certificate:    {info.ca_file}  (export REQUESTS_CA_BUNDLE={info.ca_file})")
        if info.device_capacity:
            click.echo(f"devices at once:   {info.device_capacity} (the open-files limit, ulimit -n, decides; "
                       "more get CONNACK 'server unavailable')")
        click.echo("press Ctrl-C to stop", nl=True)

    asyncio.run(run_hub(state_dir, address, port, mqtt=not no_mqtt, amqp=not no_amqp, duration=duration,
                        retention_days=retention_days, retention_bytes=int(retention_mb * 1024 * 1024),
                        on_ready=announce, on_note=lambda note: click.echo(f"note: {note}", err=True)))
    click.echo("local IoT Hub stopped")


@hub.group("c2d")
def c2d_group() -> None:
    """Cloud-to-device messages (AMQP, as the service SDKs send them).

    \b
    Examples:
      edgegen hub c2d send dev1 '{"cmd":"on"}' --ack full
    """


@c2d_group.command("send")
@click.argument("device_id")
@click.argument("body")
@click.option("--props", "props", multiple=True, metavar="KEY=VALUE", help="Application property (repeatable).")
@click.option("--ack", type=click.Choice(["none", "positive", "negative", "full"]), default="none",
              show_default=True, help="Feedback to ask for (read it on /messages/servicebound/feedback).")
@click.option("--message-id", default=None, help="Message id (default: a new UUID).")
@click.option("--correlation-id", default=None)
@click.option("--content-type", default=None, help="e.g. application/json")
@click.option("--content-encoding", default=None, help="e.g. utf-8")
@click.option("--ttl", type=click.FloatRange(min=1), default=None, help="Seconds the message may wait (default 3600).")
@_hub_options
@output_option()
def c2d_send(device_id: str, body: str, props: tuple[str, ...], ack: str, message_id: str | None,
             correlation_id: str | None, content_type: str | None, content_encoding: str | None,
             ttl: float | None, hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """Queue BODY for DEVICE_ID as a cloud-to-device message.

    \b
    Examples:
      edgegen hub c2d send dev1 '{"cmd":"on"}' --props level=7 --ack full
      edgegen hub c2d send dev1 hello --ttl 60 --output json
    """
    from edgegen.hub.c2d import send_c2d
    from edgegen.hub.connection import resolve_hub

    properties = {}
    for item in props:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--props")
        properties[key] = value
    target = resolve_hub(hub_cs, state_dir=state_dir)
    sent = send_c2d(target, device_id, body.encode(), properties=properties, ack=ack, message_id=message_id,
                    correlation_id=correlation_id, content_type=content_type, content_encoding=content_encoding,
                    ttl=ttl)
    emit({"deviceId": device_id, "messageId": sent, "ack": ack}, output_format,
         f"queued message {sent} for {device_id}")


@hub.group("consumer-group")
def consumer_group() -> None:
    """Consumer groups of the local hub's Event Hub-compatible endpoint ($Default always exists).

    \b
    Examples:
      edgegen hub consumer-group create dashboards
      edgegen hub consumer-group list --output json
    """


@consumer_group.command("list")
@_hub_options
@output_option()
def consumer_group_list(hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """List the consumer groups.

    \b
    Examples:
      edgegen hub consumer-group list
      edgegen hub consumer-group list --output json
    """
    from edgegen.hub.c2d import consumer_groups
    from edgegen.hub.connection import resolve_hub

    groups = consumer_groups(resolve_hub(hub_cs, state_dir=state_dir))
    emit(groups, output_format, "\n".join(groups))


@consumer_group.command("create")
@click.argument("name")
@_hub_options
@output_option()
def consumer_group_create(name: str, hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """Create consumer group NAME; prints the groups.

    \b
    Examples:
      edgegen hub consumer-group create dashboards
    """
    from edgegen.hub.c2d import consumer_groups
    from edgegen.hub.connection import resolve_hub

    groups = consumer_groups(resolve_hub(hub_cs, state_dir=state_dir), "PUT", name)
    emit(groups, output_format, f"created consumer group {name}")


@consumer_group.command("delete")
@click.argument("name")
@_hub_options
@output_option()
def consumer_group_delete(name: str, hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """Delete consumer group NAME; prints the groups left.

    \b
    Examples:
      edgegen hub consumer-group delete dashboards
    """
    from edgegen.hub.c2d import consumer_groups
    from edgegen.hub.connection import resolve_hub

    groups = consumer_groups(resolve_hub(hub_cs, state_dir=state_dir), "DELETE", name)
    emit(groups, output_format, f"deleted consumer group {name}")


@hub.command("status")
@_hub_options
@output_option()
def status(hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """The running local stand-in: devices connected and how many may be, message store size, monitors.

    \b
    Examples:
      edgegen hub status
      edgegen hub status --output json
    """
    from edgegen.hub.connection import resolve_hub
    from edgegen.hub.standin import standin_status

    data = standin_status(resolve_hub(hub_cs, state_dir=state_dir))
    conn = data.get("connections", {})
    store = data.get("messageStore", {})
    mb = 1024 * 1024
    lines = [
        f"devices:         {data.get('devices', 0)} registered, {conn.get('connected', 0)} connected "
        f"(room for {conn.get('capacity', 0)} at once; open-files limit {conn.get('openFilesLimit', 0)})",
        f"message store:   {store.get('messages', 0)} messages, {store.get('messageBytes', 0) / mb:.1f} MB of "
        f"messages, {store.get('fileBytes', 0) / mb:.1f} MB on disk (retention {store.get('retentionDays', 0):g} "
        f"days, {store.get('retentionBytes', 0) / mb:g} MB)",
        f"session store:   {data.get('sessionStoreBytes', 0) / mb:.1f} MB on disk",
    ]
    for monitor in data.get("monitors", []):
        lines.append(f"monitor {monitor['session']}: {'online' if monitor['online'] else 'offline'}, "
                     f"{monitor['behind']} messages behind")
    emit(data, output_format, "\n".join(lines))


@hub.group("device")
def device_group() -> None:
    """Device identities in the hub's registry.

    \b
    Examples:
      edgegen hub device create edge1 --edge --tags '{"environment":"prod"}'
      edgegen hub device list
    """


@device_group.command("create")
@click.argument("device_id")
@click.option("--edge", is_flag=True, help="An IoT Edge device (gets $edgeAgent and $edgeHub).")
@click.option("--tags", default=None, metavar="JSON", help="Device twin tags, e.g. '{\"environment\":\"prod\"}'.")
@click.option("--exist-ok", is_flag=True, help="Return the existing device instead of failing.")
@_hub_options
@output_option()
def device_create(device_id: str, edge: bool, tags: str | None, exist_ok: bool, hub_cs: str | None,
                  state_dir: Path | None, output_format: str) -> None:
    """Register DEVICE and print its connection string.

    \b
    Examples:
      edgegen hub device create edge1 --edge
      edgegen hub device create sensor7 --tags '{"environment":"prod"}' --exist-ok --output json
    """
    tag_values = _json_option(tags, "--tags")
    client = _client(hub_cs, state_dir)
    identity = client.create_device(device_id, edge=edge, exist_ok=exist_ok)
    if tag_values:
        client.set_tags(device_id, tag_values)
    data = {"deviceId": identity.device_id, "edge": identity.edge, "connectionString": identity.connection_string,
            "tags": tag_values}
    emit(data, output_format, identity.connection_string)


@device_group.command("list")
@_hub_options
@output_option(default="table")
def device_list(hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """List the registered devices.

    \b
    Examples:
      edgegen hub device list
      edgegen hub device list --output json
    """
    from edgegen.cli.output import table

    rows = [{"deviceId": d.device_id, "edge": d.edge, "status": d.status}
            for d in _client(hub_cs, state_dir).list_devices()]
    emit(rows, output_format, table(rows, ["deviceId", "edge", "status"]), columns=["deviceId", "edge", "status"])


@click.command("deploy")
@click.option("-d", "--device", "device_id", default=None, help="Deploy to this one edge device.")
@click.option("-f", "--manifest", default=None, type=click.Path(dir_okay=False),
              help="Deployment manifest (default manifests/deployment.amd64.json or config/…).")
@click.option("-n", "--name", default=None, help="At-scale deployment (configuration) name.")
@click.option("-t", "--target-condition", default=None, help="e.g. \"tags.environment='prod'\".")
@click.option("-p", "--priority", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--layered", is_flag=True, help="A layered deployment, merged on top of the base one.")
@click.option("--labels", default=None, metavar="JSON", help="Labels, a JSON object of strings.")
@click.option("--metrics", default=None, metavar="JSON",
              help='Custom metrics: {"queries": {"name": "SELECT deviceId FROM devices WHERE …"}}.')
@click.option("--fleet", default=None, type=click.Path(dir_okay=False), help="Deploy every group of fleet.yaml.")
@click.option("--dry-run", metavar="DIR", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="With --fleet: render and validate into DIR (one manifest per deployment), deploy nothing.")
@click.option("--no-validation", is_flag=True, help="Deploy even when offline validation finds errors.")
@_hub_options
@output_option()
def deploy(device_id: str | None, manifest: str | None, name: str | None, target_condition: str | None,
           priority: int, layered: bool, labels: str | None, metrics: str | None, fleet: str | None,
           dry_run: Path | None, no_validation: bool, hub_cs: str | None, state_dir: Path | None,
           output_format: str) -> None:
    """Deploy a manifest to a device or at scale.

    To one device (-d), or at scale (--name, --target-condition, --priority).
    With --fleet, every group (and device with its own variables) of a fleet file becomes an at-scale
    deployment; --dry-run renders and validates them into a folder instead. The manifest is validated offline
    first: errors refuse the deployment unless --no-validation.

    \b
    Examples:
      edgegen deploy -d edge1
      edgegen deploy --name prod --target-condition "tags.environment='prod'" --priority 10
      edgegen deploy --name prod-cfg --target-condition "tags.environment='prod'" --layered -f layer.json
      edgegen deploy --fleet fleet.yaml --dry-run out/ --output json
    """
    from edgegen.hub.deploy import DeployRequest, ManifestRejected
    from edgegen.hub.deploy import deploy as run_deploy

    metric_values = _json_option(metrics, "--metrics")
    metric_values = metric_values.get("queries", metric_values) if isinstance(metric_values, dict) else {}
    request = DeployRequest(
        device_id, manifest, name, target_condition, priority, layered,
        {str(k): str(v) for k, v in _json_option(labels, "--labels").items()},
        {str(k): str(v) for k, v in metric_values.items()}, Path(fleet) if fleet else None, dry_run, not no_validation)
    if request.problem() is not None:
        raise click.UsageError(str(request.problem()))
    try:
        outcome = run_deploy(request, lambda: _client(hub_cs, state_dir), on_findings=_print_findings)
    except ManifestRejected as exc:
        _print_findings([(None, f) for f in exc.findings])
        raise
    emit(outcome.data, output_format, _deploy_text(request, outcome))
    if outcome.error is not None:
        raise outcome.error


def _print_findings(findings: list[tuple[str | None, Any]]) -> None:
    for deployment, finding in findings:
        click.echo(f"{deployment}: {finding.render()}" if deployment else finding.render(), err=True)


def _deploy_text(request: Any, outcome: Any) -> str:
    if outcome.kind == "dry-run":
        plan = outcome.plan
        return (f"{len(plan.deployments)} deployments for {len(plan.device_deployment)} listed devices written to "
                f"{request.dry_run} ({len(plan.errors())} validation errors); nothing deployed")
    if outcome.kind == "fleet":
        return "\n".join(f"{r.action} deployment {r.target}" for r in outcome.results)
    if outcome.kind == "device":
        return f"deployed {outcome.manifest} to device {request.device_id}"
    result = outcome.results[0]
    return (f"{result.action} {'layered ' if request.layered else ''}deployment {request.name} (priority "
            f"{request.priority}, target {request.target_condition})" + "".join(f"\n  {n}" for n in result.notes))


def _since_ms(text: str) -> int:
    """``--from``: ISO 8601 (no zone: local time) or a span back from now (``90s``, ``10m``, ``2h``, ``1d``)."""
    import datetime as dt
    import re
    import time

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m:
        return int((time.time() - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]) * 1000)
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither ISO 8601 nor a span like 10m",
                                 param_hint="--from") from None
    return int(when.timestamp() * 1000)


@click.command("monitor")
@click.option("-d", "--device", "device_pattern", default=None, help="Device id (wildcards * and ? allowed).")
@click.option("-m", "--module", "module_pattern", default=None, help="Module id (wildcards * and ? allowed).")
@click.option("--properties", "props", type=click.Choice(["sys", "app", "all"]), multiple=True,
              help="Which message properties to show.")
@click.option("--timeout", "-to", type=float, default=300.0, show_default=True,
              help="Seconds to wait for messages (0: forever).")
@click.option("--count", "--mc", "count", type=int, default=None, help="Stop after this many messages.")
@click.option("--content-type", "--ct", "content_type", default=None,
              help="Decode payloads as this content type (application/json).")
@click.option("--from-start", is_flag=True, help="Also show stored messages from before now.")
@secret_option("--eventhub-connection-string", "eventhub_cs",
               help="Read the Event Hub-compatible endpoint with azure-eventhub (else "
                    "IOTHUB_EVENTHUB_CONNECTION_STRING; always for an Azure hub).")
@click.option("--consumer-group", "--cg", "group", default="$Default", show_default=True)
@click.option("--from", "since", default=None, metavar="TIME",
              help="Start with the messages enqueued at or after TIME: ISO 8601 (2026-12-01T08:00:00Z; no zone: "
                   "local time) or a span back from now (90s, 10m, 2h, 1d) (the local hub's live feed).")
@_hub_options
@output_option(default="json")
def monitor(device_pattern: str | None, module_pattern: str | None, props: tuple[str, ...], timeout: float,
            count: int | None, content_type: str | None, from_start: bool, eventhub_cs: str | None, group: str,
            since: str | None, hub_cs: str | None, state_dir: Path | None, output_format: str) -> None:
    """Show device-to-cloud messages as they arrive.

    Like az iot hub monitor-events.
    --output json (the default) and yaml print one document per message, table one line each.

    \b
    Examples:
      edgegen monitor
      edgegen monitor -d edge1 -m sensor --properties all --count 5
      edgegen monitor --from 10m --output table
    """
    from edgegen.cli.output import render_event
    from edgegen.hub.connection import resolve_hub
    from edgegen.hub.monitor import MonitorFilter, run_monitor

    target = resolve_hub(hub_cs, state_dir=state_dir)
    what = "".join(f", filtering on {k}: {v}" for k, v in (("device", device_pattern), ("module", module_pattern)) if v)
    click.echo(f"Starting event monitor on {target.host_name}{what}, use ctrl-c to stop...", err=True)
    filt = MonitorFilter(device_pattern, module_pattern, set(props), content_type)
    printed = run_monitor(target, filt, timeout=timeout or None, count=count, from_start=from_start,
                          on_event=lambda event: click.echo(render_event(event, output_format)),
                          eventhub_connection_string=eventhub_cs,
                          consumer_group=group, since_ms=_since_ms(since) if since else None,
                          warn=lambda text: click.echo(f"warning: {text}", err=True))
    if printed == 0:
        raise EdgegenError(
            f"no messages arrived within {timeout:g} s"
            + (f" for device {device_pattern!r}" if device_pattern else "")
            + (f" module {module_pattern!r}" if module_pattern else ""),
            hint="is the device running and sending? check -d/-m, or raise --timeout",
        )


@device_group.command("run")
@secret_option("--connection-string", "device_cs", env=DEVICE_CS_ENV, required=True,
               help="The edge device's connection string (edgegen hub device create DEVICE --edge prints it).")
@click.option("--solution", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Solution folder holding modules/<folder>.")
@click.option("--device-state-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".state/device"), show_default=True, help="The device runtime's state directory.")
@click.option("--ca-file", type=click.Path(dir_okay=False), default=None,
              help="CA of the hub's TLS certificate (default: the local stand-in's, for a 127.x hub).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="State directory of the local stand-in, to find its CA (default .state/hub).")
@click.option("--address", default=None, help="127.x address for the device's own edge hub (default: free).")
@click.option("--engine", type=click.Choice(["auto", "docker", "process"]), default="auto", show_default=True,
              help="Where modules run (see 'edgegen device run --help').")
def device_run(device_cs: str, solution: Path, device_state_dir: Path, ca_file: str | None,
               state_dir: Path | None, address: str | None, engine: str = "auto") -> None:
    """Run the local edge device joined to a hub: deployment from its twins, results to the hub.

    The same as 'edgegen device run --connection-string CS' (the device runtime's hub mode).

    \b
    Examples:
      edgegen hub device run --connection-string "$(edgegen hub device create edge1 --edge --exist-ok)"
    """
    import asyncio
    import logging

    from edgegen.cli.runloop import stop_on_signals
    from edgegen.common.sas import parse_connection_string
    from edgegen.hub.connection import DEFAULT_STATE_DIR
    from edgegen.hublink.edgedevice import HubDeviceOptions, run_device_on_hub
    from edgegen.local.hubstandin import read_hub_info

    host = parse_connection_string(device_cs).get("HostName", "")
    rest_host = None
    if host.startswith("127."):  # the local stand-in: its CA and REST port are in its hub.json
        info = read_hub_info(state_dir or DEFAULT_STATE_DIR)
        if info is not None and info.address == host:
            rest_host = info.host_name
            ca_file = ca_file or info.ca_file
        elif ca_file is None:
            raise EdgegenError(f"no CA for the local hub at {host}",
                               hint="pass --ca-file, or --state-dir of the running 'edgegen hub serve'")
    from edgegen.common import lograte

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lograte.install()
    for noisy in ("azure.iot.device", "paho"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = HubDeviceOptions(device_cs, device_state_dir, solution.resolve(), ca_file=ca_file,
                               rest_host=rest_host, address=address, extra={"engine": engine})

    async def main() -> None:
        stop = stop_on_signals()
        click.echo(f"joining hub {host}; waiting for a deployment…", err=True)
        await run_device_on_hub(options, stop, on_ready=lambda d: click.echo(
            f"{d.engine_choice.reason}; running {', '.join(d.agent.status()) or 'no modules'}; Ctrl-C stops",
            err=True))

    asyncio.run(main())
