"""Errors that reach the user as one line; the CLI maps them to exit codes."""


class ManurestoreError(Exception):
    """A failure the user can act on: the message names the file, the problem and the fix."""

    exit_code = 1


class UsageError(ManurestoreError):
    """The command line itself is wrong (missing path, bad option value)."""

    exit_code = 2
