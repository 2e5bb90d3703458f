"""One place that turns result data into text, JSON, YAML or a table for the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

__all__ = ["FORMATS", "emit", "output_option", "table"]

FORMATS = ("text", "json", "yaml", "table")


def output_option(choices: Sequence[str] = ("text", "json"), default: str = "text") -> Any:
    """The shared `--output/-o`-less `--output` option (``-o`` is taken by genconfig's output dir)."""
    return click.option(
        "--output",
        "output_format",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format.",
    )


def emit(data: Any, fmt: str, text: str | None = None) -> None:
    """Print ``data`` as ``fmt``; ``text`` is the human rendering used for 'text' (and 'table')."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, default=str))
    elif fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
    else:
        click.echo(text if text is not None else json.dumps(data, indent=2, default=str))


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None) -> str:
    """Render rows as a rich table and return it as text (rich is imported only here)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console = Console(width=160, record=True, force_terminal=False)
    with console.capture() as cap:
        console.print(t)
    return cap.get().rstrip()
