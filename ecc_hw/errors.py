"""The one error type users see: a one-line message naming the file, node or option at fault."""


class UserError(ValueError):
    """Bad input from the user; the CLI prints the message on one line and exits with status 2."""
