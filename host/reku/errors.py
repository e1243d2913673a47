"""Errors the CLI turns into one line on stderr and a non-zero exit."""


class RekuError(Exception):
    """A user-facing error: the message says what went wrong and where."""

    exit_code = 1

