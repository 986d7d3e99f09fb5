"""Nested (mixed-radix) counters: the sweep orders (channel group or channel, row, column) of the design."""
from __future__ import annotations

from amaranth.hdl import Module


def advance_nested(m: Module, digits: list) -> None:
    """Add one to a nested counter in the sync domain: ``digits`` is [(signal, last value), ...],
    innermost first; a digit at its last value wraps to 0 and carries into the next one, and the
    outermost digit (its last value is not used) just counts. Pure logic: no latency of its own."""
    (digit, last), outer = digits[0], digits[1:]
    if not outer:
        m.d.sync += digit.eq(digit + 1)
        return
    with m.If(digit == last):
        m.d.sync += digit.eq(0)
        advance_nested(m, outer)
    with m.Else():
        m.d.sync += digit.eq(digit + 1)
