"""Errors that are the user's to fix: the CLI prints them as one line, without a traceback."""


class UserError(Exception):
    """Bad input: a missing file, a malformed line, a bad argument. The message says what to fix."""
