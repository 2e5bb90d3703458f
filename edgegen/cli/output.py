"""The CLI's one output contract: every command that prints data takes ``--output text|json|yaml|table``.

Library functions return data (or hand over events); only this module turns them into text for the terminal:

- ``json``: the data, indented, parseable (``json.loads`` of stdout);
- ``yaml``: the same data as YAML (PyYAML, a dependency);
- ``table``: rows (a list of mappings) or one mapping as a table (rich, imported only here);
- ``text``: the command's own human rendering, else the table.

Progress, notes and warnings go to stderr, so stdout holds the data alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

__all__ = ["FORMATS", "emit", "output_option", "render", "render_event", "render_record", "table"]

FORMATS = ("text", "json", "yaml", "table")


def output_option(default: str = "text") -> Any:
    """The shared ``--output`` option, always with every format (``-o`` is taken by genconfig's output dir)."""
    assert default in FORMATS
    return click.option(
        "--output",
        "output_format",
        type=click.Choice(FORMATS),
        default=default,
        show_default=True,
        help="Output format: text (for people), json, yaml (for programs), table.",
    )


def render(data: Any, fmt: str, text: str | None = None, *, rows: Sequence[Mapping[str, Any]] | None = None,
           columns: Sequence[str] | None = None) -> str:
    """``data`` as ``fmt``. ``text`` is the command's human rendering ('text'; a table when None); ``rows`` and
    ``columns`` what the table shows (default: ``data`` itself, a list of rows or one mapping)."""
    if fmt == "json":
        return json.dumps(data, indent=2, default=str)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(_plain(data), sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip()
    if fmt == "text" and text is not None:
        return text
    return _as_table(data if rows is None else rows, columns)


def emit(data: Any, fmt: str, text: str | None = None, *, rows: Sequence[Mapping[str, Any]] | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Print ``render(data, fmt, text, rows=rows, columns=columns)`` on stdout."""
    click.echo(render(data, fmt, text, rows=rows, columns=columns))


def render_record(record: Mapping[str, Any], fmt: str, text: str) -> str:
    """One record of a stream (logs, messages): a JSON line, a YAML document, or ``text`` (text and table)."""
    if fmt == "json":
        return json.dumps(record)
    if fmt == "yaml":
        return "---\n" + render(record, "yaml")
    return text


def render_event(event: Mapping[str, Any], fmt: str) -> str:
    """One monitor event (``edgegen.hub.events.format_event``) as one document: a stream of JSON objects, YAML
    documents, or table rows (device, module, payload)."""
    if fmt == "yaml":
        return "---\n" + render(event, "yaml")
    if fmt == "table":
        e = event["event"]
        payload = e["payload"] if isinstance(e["payload"], str) else json.dumps(e["payload"])
        return f"{e['origin']:<16} {e['module'] or '-':<14} {payload}"
    return json.dumps(event, indent=4)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None) -> str:
    """Render rows as a rich table and return it as text (rich is imported only here)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if row.get(c) is None else _cell(row.get(c)) for c in columns))
    console = Console(width=160, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(t)
    return cap.get().rstrip()


def _as_table(data: Any, columns: Sequence[str] | None) -> str:
    if isinstance(data, Mapping):
        if columns is None and data and all(isinstance(v, Mapping) for v in data.values()):
            rows = [{"name": k, **v} for k, v in data.items()]  # {name: {field: value}}: one row per name
            return table(rows, _columns(rows))
        return table([{"key": k, "value": v} for k, v in data.items()], ["key", "value"])
    if isinstance(data, list | tuple) and all(isinstance(r, Mapping) for r in data):
        return table(data, columns or _columns(data))
    if isinstance(data, list | tuple):
        return "\n".join(_cell(item) for item in data)
    return "" if data is None else _cell(data)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _cell(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, Mapping | list | tuple) else str(value)


def _plain(data: Any) -> Any:
    """JSON-shaped data (what ``json`` prints) for safe_dump: tuples, paths and the like as JSON has them."""
    return json.loads(json.dumps(data, default=str))
