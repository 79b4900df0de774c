"""What every subcommand shares: error mapping, the stderr console, device choice."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer
from rich.console import Console

from manurestore.errors import ManurestoreError

F = TypeVar("F", bound=Callable)

# Progress bars, warnings and errors go to stderr so stdout stays clean for tables and JSON.
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def print_error(message: str) -> None:
    err_console.print(f"manurestore: error: {message}", markup=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"manurestore: warning: {message}", markup=False, soft_wrap=True)


def reports_errors(command: F) -> F:
    """Turn a ManurestoreError into one line on stderr and its exit code (2 usage, 1 failure)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ManurestoreError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
