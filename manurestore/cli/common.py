"""What every subcommand shares: error mapping, the stderr console, device choice."""

from __future__ import annotations

import functools
import warnings
from typing import Callable, TypeVar

import typer
from rich.console import Console

from manurestore.errors import ManurestoreError, ManurestoreWarning

F = TypeVar("F", bound=Callable)

# Progress bars, warnings and errors go to stderr so stdout stays clean for tables and JSON.
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def print_error(message: str) -> None:
    err_console.print(f"manurestore: error: {message}", markup=False, soft_wrap=True)


def print_warning(message: str) -> None:
    err_console.print(f"manurestore: warning: {message}", markup=False, soft_wrap=True)


def _one_line_warnings(fallback: Callable) -> Callable:
    """A `warnings.showwarning` that prints the library's warnings as one line each and hands
    anyone else's to `fallback`, the way Python shows them."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ManurestoreWarning):
            print_warning(str(message))
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def reports_errors(command: F) -> F:
    """Turn a ManurestoreError into one line on stderr and its exit code (2 usage, 1 failure);
    show the library's warnings (a skipped plugin, say) as one line each while it runs."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", ManurestoreWarning)
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                return command(*args, **kwargs)
        except ManurestoreError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
