"""One stack of SB_SPRAM256KA blocks serving many banks through per-bank virtual ports."""
from __future__ import annotations

from amaranth.hdl import C, ClockSignal, Elaboratable, Instance, Module, Mux, Signal

from .errors import HardwareError
from .plan import bits_for, pow2_depth
from .spram_layout import NIBBLE, SPRAM_WIDTH, SPRAM_WORDS, SpramStack


class SpramReadPort:
    """A bank's read port: ``addr`` (bank-local word), ``data`` one cycle later, ``req`` high in every
    cycle in which the bank's user needs the read (it selects the SPRAM address)."""

    def __init__(self, name: str, addr_bits: int, shape):
        self.addr = Signal(addr_bits, name=f"{name}_rd_addr")
        self.data = Signal(shape, name=f"{name}_rd_data")
        self.req = Signal(name=f"{name}_rd_req")


class SpramWritePort:
    """A bank's write port: ``data`` written at ``addr`` (bank-local) at the end of a cycle with ``en``."""

    def __init__(self, name: str, addr_bits: int, shape):
        self.addr = Signal(addr_bits, name=f"{name}_wr_addr")
        self.data = Signal(shape, name=f"{name}_wr_data")
        self.en = Signal(name=f"{name}_wr_en")


class SpramStackUnit(Elaboratable):
    """The SB_SPRAM256KA columns of one :class:`~rtl_gen.spram_layout.SpramStack` and their ports.

    ``bank(region, name, lane, shape)`` returns the (read port, write port) of one bank; its words are
    the bits of its field at stack addresses ``offset + addr``.

    Per SPRAM and cycle: if a bank on it writes, the SPRAM writes (the first writer's address; the
    writers' fields under the nibble mask, so banks sharing a word keep each other's bits); otherwise
    it reads at the address of the first bank (in ``bank()`` order) whose ``req`` is high. Latency:
    registered read, data one cycle after the address (no user reads it after a write cycle).
    Throughput: one access (read or write) per SPRAM per cycle, so the users read in one cycle and
    write in the next (the caller's schedule guarantees that two banks on one SPRAM never need
    different addresses in one cycle; it is not checked in hardware).
    """

    def __init__(self, stack: SpramStack):
        if stack.depth > SPRAM_WORDS:
            raise HardwareError(f"SPRAM {stack.name} stack needs {stack.depth:,} words, more than "
                                f"{SPRAM_WORDS:,}")
        self.stack = stack
        self.banks = []       # (field, offset, read port, write port)

    def bank(self, region_name: str, name: str, lane: int, shape):
        region = self.stack.region(region_name)
        fld = region.field(name, lane)
        addr_bits = bits_for(pow2_depth(region.depth) - 1)
        label = f"{name}{lane}"
        rp = SpramReadPort(label, addr_bits, shape)
        wp = SpramWritePort(label, addr_bits, shape)
        self.banks.append((fld, region.offset, rp, wp))
        return rp, wp

    def elaborate(self, platform):
        m = Module()
        abits = bits_for(SPRAM_WORDS - 1)
        for column in range(self.stack.columns):
            low, high = column * SPRAM_WIDTH, (column + 1) * SPRAM_WIDTH
            here = [(f, off, rp, wp, max(f.bit, low), min(f.bit + f.width, high))
                    for f, off, rp, wp in self.banks if f.bit < high and f.bit + f.width > low]
            addr = Signal(abits, name=f"{self.stack.name}{column}_addr")
            din = Signal(SPRAM_WIDTH, name=f"{self.stack.name}{column}_din")
            dout = Signal(SPRAM_WIDTH, name=f"{self.stack.name}{column}_dout")
            mask = Signal(4, name=f"{self.stack.name}{column}_mask")
            wren = Signal(name=f"{self.stack.name}{column}_wren")
            m.submodules[f"{self.stack.name}{column}"] = Instance(
                "SB_SPRAM256KA", i_ADDRESS=addr, i_DATAIN=din, i_MASKWREN=mask, i_WREN=wren,
                i_CHIPSELECT=C(1), i_CLOCK=ClockSignal(), i_STANDBY=C(0), i_SLEEP=C(0),
                i_POWEROFF=C(1), o_DATAOUT=dout)
            masks = []
            for f, _off, rp, wp, lo, hi in here:
                nibbles = sum(1 << n for n in range((lo - low) // NIBBLE, -(-(hi - low) // NIBBLE)))
                masks.append(Mux(wp.en, nibbles, 0))
                m.d.comb += rp.data[lo - f.bit:hi - f.bit].eq(dout[lo - low:hi - low])
                with m.If(wp.en):
                    m.d.comb += din[lo - low:hi - low].eq(wp.data[lo - f.bit:hi - f.bit])
            mask_any = masks[0]
            for item in masks[1:]:
                mask_any = mask_any | item
            _, off, rp, wp, _, _ = here[-1]
            write_addr, read_addr = off + wp.addr, off + rp.addr
            for _, off, rp, wp, _, _ in reversed(here[:-1]):
                write_addr = Mux(wp.en, off + wp.addr, write_addr)
                read_addr = Mux(rp.req, off + rp.addr, read_addr)
            m.d.comb += [mask.eq(mask_any), wren.eq(mask_any != 0),
                         addr.eq(Mux(wren, write_addr, read_addr))]
        return m
