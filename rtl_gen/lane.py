"""Synapse lane: read-modify-write of one membrane bank, one update per clock, hazard-free."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .plan import bits_for, rom_depth


class SynapseLane(wiring.Component):
    """One lane of the synapse array: owns the weight ROM of its channels (``co % P == lane``).

    Members
    -------
    update : In(stream.Signature(update_layout, always_ready=True))
        The walker's command (shared by all lanes); this lane acts on it when ``group`` names one
        of its channels (``group * P + lane < C_out``).
    rd_addr : Out(bank address)
        Read address of the membrane bank (registered read, transparent for ``wr_*``).
    rd_data : In(signed(width))
    wr_addr, wr_data, wr_en : Out
        Write port of the membrane bank.
    busy : Out(1)
        An update is in stages B or C.
    shift : In(range(max_shift + 1)), only with ``max_shift`` > 0
        Binary-coded (radix) input: the weight is added shifted left by ``shift`` (T - t for spikes
        of step t, so Horner's rule needs no multiplier); stable while updates are in flight.

    Pipeline: A (cycle k) weight ROM address; B (k+1) weight * value (or weight << shift), bank
    read address; C (k+2) bank data + product written back. Throughput one update per clock.
    Read-after-write: the bank's read port is transparent for its write port, so a read in cycle
    k+2 of the address written in k+2 returns the new sum (forwarding inside the RAM): back-to-back
    updates to one neuron are exact. Latency: an update issued in cycle k is in the bank after cycle k+2.
    """

    def __init__(self, weights, weight_bits, update_layout, width, depth, lane, lanes, channels,
                 max_shift: int = 0):
        self.weights = [int(w) for w in weights]
        self.weight_bits = weight_bits
        self.width = width
        self.lane_groups = max(0, -(-(channels - lane) // lanes))
        self.multiply = update_layout.members["value"] != unsigned(1)
        self.max_shift = int(max_shift)
        members = {
            "update": In(stream.Signature(update_layout, always_ready=True)),
            "rd_addr": Out(bits_for(depth - 1)),
            "rd_data": In(signed(width)),
            "wr_addr": Out(bits_for(depth - 1)),
            "wr_data": Out(signed(width)),
            "wr_en": Out(1),
            "busy": Out(1),
        }
        if self.max_shift:
            members["shift"] = In(range(self.max_shift + 1))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.weights = rom = Memory(shape=signed(self.weight_bits),
                                            depth=rom_depth(len(self.weights)), init=self.weights)
        rp = rom.read_port()
        upd = self.update.payload
        m.d.comb += rp.addr.eq(upd.waddr)

        valid_b = Signal()
        maddr_b = Signal.like(upd.maddr)
        value_b = Signal.like(upd.value)
        valid_c = Signal()
        maddr_c = Signal.like(upd.maddr)
        product_c = Signal(signed(self.width))
        m.d.sync += [valid_b.eq(self.update.valid & (upd.group < self.lane_groups)),
                     maddr_b.eq(upd.maddr), value_b.eq(upd.value)]
        product = rp.data * value_b if self.multiply else rp.data
        if self.max_shift:
            product = product << self.shift
        m.d.sync += [valid_c.eq(valid_b), maddr_c.eq(maddr_b), product_c.eq(product)]
        m.d.comb += [
            self.rd_addr.eq(maddr_b),
            self.wr_addr.eq(maddr_c),
            self.wr_data.eq(self.rd_data + product_c),
            self.wr_en.eq(valid_c),
            self.busy.eq(valid_b | valid_c),
        ]
        return m
