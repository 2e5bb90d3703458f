"""`edgegen route test` and `edgegen routes`: thin shells over edgegen.routing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edgegen.cli.output import emit, output_option
from edgegen.common.safeload import loads_json, read_text
from edgegen.errors import EdgegenError, Location

__all__ = ["route", "routes"]


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint=option)
        key, value = item.split("=", 1)
        out[key] = value
    return out


def _read_json(path: Path, what: str) -> Any:
    return loads_json(read_text(path, what=what), file=str(path), what=f"the {what}")


@click.group("route")
def route() -> None:
    """Test single routes and conditions against a message.

    \b
    Examples:
      edgegen route test '$body.temp > 30' --body '{"temp": 35}'
    """


@route.command("test")
@click.argument("text", metavar="ROUTE_OR_CONDITION")
@click.option("--message", "message_file", type=click.Path(path_type=Path, dir_okay=False),
              help='JSON file: {"properties": {...}, "systemProperties": {...}, "body": ...}.')
@click.option("--body", "body", help="The body as JSON text (sets contentType application/json, utf-8).")
@click.option("--prop", "props", multiple=True, metavar="KEY=VALUE", help="An application property (repeatable).")
@click.option("--sys", "sys_props", multiple=True, metavar="KEY=VALUE", help="A system property (repeatable).")
@click.option("--source", help="The message source, e.g. /messages/modules/sensor/outputs/temperatureOutput.")
@output_option()
def route_test(text: str, message_file: Path | None, body: str | None, props: tuple[str, ...],
               sys_props: tuple[str, ...], source: str | None, output_format: str) -> None:
    """Evaluate a route or a WHERE condition against one message and explain the outcome.

    Exit status: 0 when the message is routed (the condition is true), 1 when it is not (like grep), so a
    script can test a route; 2 for usage errors.

    \b
    Examples:
      edgegen route test '$body.temp > 30' --body '{"temp": 35}'
      edgegen route test 'as_number(level) > 3' --prop level=5
      edgegen route test 'FROM /messages/modules/sensor/* INTO $upstream' --source /messages/modules/sensor
      edgegen route test '$body.temp > 30' --message message.json --output json
    """
    from edgegen.routing.explain import route_test_message, test_message

    if message_file is not None and body is not None:
        raise click.UsageError("give either --message or --body, not both")
    if body is not None:
        try:
            json.loads(body)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise click.BadParameter(f"not JSON: {getattr(exc, 'msg', 'nested too deep')}", param_hint="--body") \
                from None
    doc = _read_json(message_file, "message file") if message_file is not None else None
    message = route_test_message(doc, file=str(message_file) if message_file else None, body=body,
                                props=_pairs(props, "--prop"), sys_props=_pairs(sys_props, "--sys"), source=source)
    report = test_message(text, message, source)
    emit(report.to_dict(), output_format, _report_text(report))
    if not report.routed:
        import sys

        from edgegen.cli import ExitStatus

        sys.exit(ExitStatus.FAILURE)  # main() runs click with standalone_mode=False: ctx.exit codes are lost


def _report_text(report: Any) -> str:
    lines = []
    if report.kind == "route" and not report.source_matches:
        lines.append(f"NOT ROUTED: the message comes from {report.source}, which FROM {report.route_source} "
                     "does not take")
        lines.append("hint: FROM matches by case-insensitive prefix; set --source or the connectionModuleId/"
                     "outputName system properties")
        return "\n".join(lines)
    if report.routed:
        where = f" to {report.endpoint}" if report.endpoint is not None else ""
        lines.append(f"ROUTED{where}: the condition is true" if report.steps else f"ROUTED{where} (no condition)")
    else:
        lines.append(f"NOT ROUTED: the condition is {report.result}, and only true routes a message")
        for s in report.culprits:
            lines.append(f"  because {s.text!r} is {s.shown()}")
            for leaf in _undefined_leaves(report.steps, s):
                lines.append(f"    ({leaf.text!r} is undefined: absent, or not of the type used)")
    if report.body_note:
        lines.append(f"note: {report.body_note}")
    if report.steps:
        lines.append("evaluation:")
        for s in report.steps:
            lines.append(f"  {'  ' * s.depth}{s.text}  =>  {s.shown()}")
    return "\n".join(lines)


def _undefined_leaves(steps: list[Any], culprit: Any) -> list[Any]:
    inside = [s for s in steps if culprit.start <= s.start and s.end <= culprit.end and s.text != culprit.text]
    return [s for s in inside if s.shown() == "undefined" and not any(
        o is not s and s.start <= o.start and o.end <= s.end and o.text != s.text for o in inside)]


@click.command("routes")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot"]), default="text", show_default=True,
              help="text for people, mermaid for Markdown, dot for Graphviz.")
@output_option()
def routes(manifest: Path, fmt: str, output_format: str) -> None:
    """Draw a manifest's message flow (text, mermaid, dot).

    Modules, outputs, inputs, $upstream and every route as an edge.

    --output json (or yaml, table) gives the same flow as data (modules, ports, edges, routes that did not
    compile) and the lint.

    \b
    Examples:
      edgegen routes manifests/deployment.amd64.json
      edgegen routes manifests/deployment.amd64.json --format mermaid > flow.md
      edgegen routes manifests/deployment.amd64.json --output json
    """
    from edgegen.routing import lint_routes
    from edgegen.routing.graph import render

    data = _read_json(manifest, "manifest")
    if not isinstance(data, dict):
        raise EdgegenError("the manifest must hold a JSON object", location=Location(file=str(manifest)))
    if output_format != "text":
        from dataclasses import asdict

        from edgegen.routing.graph import build_graph

        graph = build_graph(data)
        emit({"manifest": str(manifest), "modules": graph.modules,
              "ports": [asdict(p) for p in graph.ports.values()], "edges": [asdict(e) for e in graph.edges],
              "problems": graph.problems, "lint": [asdict(f) for f in lint_routes(data)]}, output_format)
        return
    click.echo(render(data, fmt), nl=fmt == "text")
    if fmt == "text":
        findings = lint_routes(data)
        if findings:
            click.echo("lint:")
            for f in findings:
                click.echo("  " + f.render().replace("\n", "\n  "))
