"""`manurestore plugins`: every degradation op, where it comes from, and its parameters."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from manurestore.cli.common import out_console, reports_errors


def _format_parameter(row: dict) -> str:
    default = row["default"]
    text = f"{row['name']}={default}"
    if row["bounds"] is not None:
        text += f" in [{row['bounds'][0]}, {row['bounds'][1]}]"
    return text


@reports_errors
def command(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
) -> None:
    """List every degradation op: name, source (built-in or distribution and version), scope, parameters."""
    from manurestore.degradations.presets import list_presets
    from manurestore.plugins import describe_ops, load_failures

    ops = describe_ops()
    if as_json:
        typer.echo(json.dumps({"ops": ops, "presets": list_presets(), "load_failures": load_failures()}, indent=2))
        return
    table = Table(title="degradation ops", title_justify="left")
    table.add_column("op", style="bold")
    table.add_column("source")
    table.add_column("scope")
    table.add_column("parameters (default in \\[bounds])")
    table.add_column("what it does")
    for row in ops:
        source = row["source"] if row["version"] is None else f"{row['source']} {row['version']}"
        params = "\n".join(_format_parameter(p) for p in row["parameters"])
        table.add_row(row["name"], source, row["scope"], params, row["description"])
    out_console.print(table)
    out_console.print(f"presets: {', '.join(list_presets())}")
