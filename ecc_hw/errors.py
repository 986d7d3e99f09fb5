"""The one error type users see: a one-line message naming the file, node or option at fault."""
from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user; the CLI prints the message on one line and exits with status 2.

    ``field``, when given, is the library's name of the option at fault (``"weight_bits"``, ``"lanes"``)
    and ``message`` says what is wrong with it: ``str(error)`` reads ``"weight_bits: 1 is outside
    2..16"``, and the CLI writes the option's flag in the field's place (``"--weight-bits: ..."``).
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field

    def __reduce__(self):
        return type(self), (self.message, self.field)

    def naming(self, name_of_field) -> str:
        """The message with the field written as ``name_of_field(field)`` (e.g. its CLI flag)."""
        return f"{name_of_field(self.field)}: {self.message}" if self.field else self.message
