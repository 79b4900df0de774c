"""The `manurestore` Typer application: one module per subcommand, registered here."""

from __future__ import annotations

import sys
from typing import Optional

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, NoSuchOption, UsageError

from manurestore import __version__
from manurestore.cli.common import ManurestoreCommand, ManurestoreGroup, print_error


def usage_line(error: ClickException) -> str:
    """A click/typer error as one line that names the mistake and where the right usage is shown.

    "No such command 'restor'. Did you mean 'restore'?" becomes
    "no such command 'restor'; did you mean 'restore'? (see manurestore -h)".
    """
    if isinstance(error, NoSuchOption) and error.possibilities:
        text = f"no such option: {error.option_name}; did you mean {' or '.join(sorted(error.possibilities))}?"
    else:
        text = " ".join(error.format_message().replace("Value error, ", "").split()).rstrip(".")
        text = "; ".join(_lower_first(clause) for clause in text.split(". "))
    ctx = getattr(error, "ctx", None)
    hint = f"see {ctx.command_path} {ctx.help_option_names[0]}" if ctx is not None else "see manurestore -h"
    return f"{text} ({hint})" if text.endswith("?") else f"{text}; {hint}"


def _lower_first(text: str) -> str:
    """'Missing option' → 'missing option', 'Input should' after a colon too; leaves 'MODEL', '-o' alone."""
    head, colon, tail = text.partition(": ")
    if colon:
        return f"{_lower_first(head)}: {_lower_first(tail)}"
    return text[0].lower() + text[1:] if text[:1].isupper() and text[1:2].islower() else text


class RootGroup(ManurestoreGroup):
    """`manurestore` itself: every usage error, from any subcommand, is one line on stderr and exit 2.

    typer would draw a multi-line box; the README promises `manurestore: error: ...` instead. Errors
    are caught here, once, by running typer's main without its standalone error handling.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # Without standalone mode typer returns the code of a `typer.Exit` (our commands return None).
            outcome = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:  # `manurestore` or `manurestore degrade` alone: the help
            if error.format_message():  # rich mode has printed it already
                error.show()
            sys.exit(error.exit_code)
        except UsageError as error:
            print_error(usage_line(error))
            sys.exit(2)
        except ClickException as error:
            print_error(" ".join(error.format_message().split()))
            sys.exit(error.exit_code)
        except typer.Abort:
            print_error("aborted")
            sys.exit(1)
        sys.exit(outcome if isinstance(outcome, int) else 0)


app = typer.Typer(
    cls=RootGroup,
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

    app.command("synth", no_args_is_help=True, cls=ManurestoreCommand)(synth.command)
    app.command("degrade", no_args_is_help=True, cls=ManurestoreCommand)(degrade.command)
    app.command("train", no_args_is_help=True, cls=ManurestoreCommand)(train.command)
    app.command("evaluate", no_args_is_help=True, cls=ManurestoreCommand)(evaluate.command)
    app.command("restore", no_args_is_help=True, cls=ManurestoreCommand)(restore.command)
    app.add_typer(visualize.app, name="visualize")
    app.command("plugins", cls=ManurestoreCommand)(plugins.command)


_register_commands()


def main() -> None:
    app()
