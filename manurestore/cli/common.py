"""What every subcommand shares: error mapping, the stderr console, readable help."""

from __future__ import annotations

import functools
import warnings
from contextlib import nullcontext
from pathlib import PurePath
from typing import Callable, TypeVar, get_args

import typer
from rich.console import Console
from rich.markup import escape
from typer._click.exceptions import UsageError as ClickUsageError
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

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
    show the library's warnings (a skipped plugin, say) as one line each while it runs; a command
    with a `threads` option (see `threads_option`) runs with that many torch threads."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from manurestore.threads import intra_op_threads

        try:
            threads = intra_op_threads(kwargs["threads"]) if kwargs.get("threads") is not None else nullcontext()
            with warnings.catch_warnings(), threads:
                warnings.simplefilter("always", ManurestoreWarning)
                warnings.showwarning = _one_line_warnings(warnings.showwarning)
                return command(*args, **kwargs)
        except ManurestoreError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt as stop:  # a stop signal (training.stopping) carries its name and exit code
            print_error(f"stopped by {stop.signal_name}" if hasattr(stop, "signal_name") else "interrupted")
            raise typer.Exit(getattr(stop, "exit_code", 130)) from None

    return wrapper  # type: ignore[return-value]


# Help that reads like a Unix tool's: typer 0.29 labels values `<int>`, `<list[Path]>` and flags
# `<bool>`, writes a required argument `{inputs}...`, and (markup mode "rich") eats a
# `[default: ...]` written into help text as if it were a style tag.
_TYPE_LABELS = {int: "INTEGER", float: "FLOAT", str: "TEXT"}


class _ReadableArgument(TyperArgument):
    """An argument shown by its name in capitals (`INPUTS...`, `[DATA]...`), with no type label."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or self.name.upper()

    def display_type_rich(self, ctx) -> None:
        return None

    def _usage_display_name(self) -> str:
        if self.metavar is not None:
            return self.metavar
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


class _ReadableOption(TyperOption):
    """An option whose value is labelled INTEGER, FLOAT, PATH, TEXT or [a|b]; a flag has no label."""

    def display_type_rich(self, ctx) -> str | None:
        if self.metavar is not None:
            return self.metavar
        if self.is_flag or self.count:
            return None
        return _value_label(self.type_descriptor)


def _value_label(descriptor) -> str:
    if descriptor.is_choice:
        return "[" + "|".join(str(getattr(choice, "value", choice)) for choice in descriptor.choices) + "]"
    annotation = get_args(descriptor.annotation)[0] if descriptor.is_list else descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "PATH"
    return _TYPE_LABELS.get(annotation) or getattr(annotation, "__name__", str(annotation)).upper()


def _readable(params: list, markup_mode) -> list:
    """Give typer's own parameters the readable display (once each); their parsing is unchanged.

    typer builds them itself (typer.main._get_param) with no hook for the class, so they are
    re-classed here, to subclasses that only change how they are shown.
    """
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _ReadableArgument
        elif type(param) is TyperOption:
            param.__class__ = _ReadableOption
        else:
            continue
        if param.help and markup_mode == "rich":
            param.help = escape(param.help)
    return params


class _KnowsItsCommand:
    """Attach the command to parse errors click raises without one (`--op` with no value), so the
    one-line error can name `manurestore COMMAND -h`."""

    def parse_args(self, ctx, args: list) -> list:
        try:
            return super().parse_args(ctx, args)
        except ClickUsageError as error:
            if error.ctx is None:
                error.ctx, error.cmd = ctx, self
            raise


class ManurestoreCommand(_KnowsItsCommand, TyperCommand):
    """A subcommand whose help shows INPUTS..., INTEGER, PATH and the defaults written into help text."""

    def get_params(self, ctx) -> list:
        return _readable(super().get_params(ctx), self.rich_markup_mode)


class ManurestoreGroup(_KnowsItsCommand, TyperGroup):
    """A group (`manurestore`, `manurestore visualize`) with the same readable help."""

    def get_params(self, ctx) -> list:
        return _readable(super().get_params(ctx), self.rich_markup_mode)


def threads_option():
    """`--threads auto|N`, the same for every command that computes (see manurestore/threads.py)."""
    return typer.Option("auto", "--threads", metavar="auto|N",
                        help="torch threads: auto takes the cores other processes leave free now (all on an idle machine; "
                             "OMP_NUM_THREADS, when set, is kept), or a number.")
