"""Errors raised by the hardware generator before elaboration."""
from ecc_hw.errors import UserError


class HardwareError(UserError):
    """A parameter file or option the hardware cannot implement (one-line message)."""
