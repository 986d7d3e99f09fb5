"""Pipeline registers."""
from __future__ import annotations

from amaranth.hdl import Module, Signal


def delayed(m: Module, sources: dict, stage: str) -> list:
    """One register stage: each source one cycle later, named ``<key>_<stage>`` (latency 1)."""
    registers = []
    for key, source in sources.items():
        register = Signal.like(source, name=f"{key}_{stage}")
        m.d.sync += register.eq(source)
        registers.append(register)
    return registers
