"""Errors and warnings that reach the user as one line; the CLI maps errors to exit codes."""


class ManurestoreError(Exception):
    """A failure the user can act on: the message names the file, the problem and the fix."""

    exit_code = 1


class UsageError(ManurestoreError):
    """The command line itself is wrong (missing path, bad option value)."""

    exit_code = 2


class ManurestoreWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""
