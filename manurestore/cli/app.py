"""The `manurestore` Typer application: one module per subcommand, registered here."""

from __future__ import annotations

from typing import Optional

import typer

from manurestore import __version__

app = typer.Typer(
    name="manurestore",
    help="Restore degraded scans of Sanskrit manuscripts (palm-leaf, paper, birch-bark).",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version_text() -> str:
    import kornia
    import torch

    from manurestore.devices import visible_devices

    return (
        f"manurestore {__version__}\n"
        f"torch {torch.__version__}\n"
        f"kornia {kornia.__version__}\n"
        f"devices: {', '.join(visible_devices())}"
    )


def _show_version(value: bool) -> None:
    if value:
        typer.echo(_version_text())
        raise typer.Exit()


@app.callback()
def root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_show_version, is_eager=True,
        help="Print manurestore, torch and kornia versions and the devices torch sees.",
    ),
) -> None:
    """Restore degraded scans of Sanskrit manuscripts."""


def _register_commands() -> None:
    # Imported here, not at module top, so `manurestore --version` stays quick and one
    # subcommand's import error cannot hide the others' help.
    from manurestore.cli import degrade, evaluate, plugins, restore, synth, train, visualize

    app.command("synth", no_args_is_help=True)(synth.command)
    app.command("degrade", no_args_is_help=True)(degrade.command)
    app.command("train", no_args_is_help=True)(train.command)
    app.command("evaluate", no_args_is_help=True)(evaluate.command)
    app.command("restore", no_args_is_help=True)(restore.command)
    app.add_typer(visualize.app, name="visualize")
    app.command("plugins")(plugins.command)


_register_commands()


def main() -> None:
    app()
