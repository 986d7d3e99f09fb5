"""Spike buffer: spike words of one layer's sweep, replayed one spike per cycle as events."""
from __future__ import annotations

from collections import namedtuple

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .plan import bits_for, pow2_depth

_Port = namedtuple("_Port", "addr data en")


class SpikeBuffer(wiring.Component):
    """Stores the spike words of layer n's fire sweep and serialises them for layer n+1's walker.

    Members
    -------
    clear : In(1)
        Pulse: empty the buffer (before the producing sweep starts).
    push : In(stream.Signature(word_layout, always_ready=True))
        One spike word (group, y, x, lane mask) per handshake, at most one per cycle.
    enable : In(1)
        Release events (the design runs layers one after the other).
    events : Out(stream.Signature(event_layout))
        One spike per handshake, in sweep order, lowest lane first: channel ``group * P + lane``,
        value 1.
    pending : Out(1)
        Spikes remain.

    With ``single_port=True`` the words live outside (an SPRAM region, ``rtl_gen.spram``) behind
    these members instead of an internal memory:

    wr_addr, wr_data, wr_en : Out
        Write port (a push).
    rd_addr : Out; rd_data : In(word_layout); rd_req : Out(1)
        Registered read port, used in every cycle without a push; ``rd_req`` (words pending or a
        push) asks for it.

    Latency and throughput: a word pushed in cycle k can be replayed from cycle k+1; replay is one
    spike per cycle (the read port is addressed one word ahead, transparent for the write port),
    with no bubble between words. Single-ported, replay may start only after one cycle without a
    push (the controller leaves at least one between a fire sweep's last push and the integration).
    """

    def __init__(self, word_layout: data.StructLayout, words: int, lanes: int,
                 event_layout: data.StructLayout, single_port: bool = False):
        self.word_layout = word_layout
        self.depth = pow2_depth(words)
        self.lanes = lanes
        self.single_port = single_port
        members = {
            "clear": In(1),
            "push": In(stream.Signature(word_layout, always_ready=True)),
            "enable": In(1),
            "events": Out(stream.Signature(event_layout)),
            "pending": Out(1),
        }
        if single_port:
            addr = bits_for(self.depth - 1)
            members.update({"wr_addr": Out(addr), "wr_data": Out(word_layout), "wr_en": Out(1),
                            "rd_addr": Out(addr), "rd_data": In(word_layout), "rd_req": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        if self.single_port:
            wp_port = _Port(addr=self.wr_addr, data=self.wr_data, en=self.wr_en)
            rp_port = _Port(addr=self.rd_addr, data=self.rd_data, en=None)
            m.d.comb += self.rd_req.eq(self.pending | self.push.valid)
        else:
            m.submodules.words = mem = Memory(shape=self.word_layout, depth=self.depth, init=[])
            wp_port = mem.write_port()
            rp_port = mem.read_port(transparent_for=(wp_port,))
        ptr_bits = bits_for(self.depth)
        wp = Signal(ptr_bits)
        rp = Signal(ptr_bits)
        consumed = Signal(lanes)

        m.d.comb += [wp_port.addr.eq(wp), wp_port.data.eq(self.push.payload),
                     wp_port.en.eq(self.push.valid)]
        with m.If(self.push.valid):
            m.d.sync += wp.eq(wp + 1)

        word = rp_port.data
        remaining = Signal(lanes)
        lowest = Signal(lanes)
        index = Signal(bits_for(lanes - 1))
        m.d.comb += [remaining.eq(word.mask & ~consumed), lowest.eq(remaining & (~remaining + 1))]
        for bit in reversed(range(lanes)):
            with m.If(remaining[bit]):
                m.d.comb += index.eq(bit)
        pending = rp != wp
        m.d.comb += [self.pending.eq(pending), self.events.valid.eq(pending & self.enable)]
        ev = self.events.payload
        m.d.comb += [ev.c.eq(word.group * lanes + index), ev.y.eq(word.y), ev.x.eq(word.x),
                     ev.value.eq(1)]
        advance = Signal()
        with m.If(self.events.valid & self.events.ready):
            with m.If(~(remaining & ~lowest).any()):
                m.d.comb += advance.eq(1)
                m.d.sync += [rp.eq(rp + 1), consumed.eq(0)]
            with m.Else():
                m.d.sync += consumed.eq(consumed | lowest)
        m.d.comb += rp_port.addr.eq(rp + advance)
        with m.If(self.clear):
            m.d.sync += [wp.eq(0), rp.eq(0), consumed.eq(0)]
            m.d.comb += rp_port.addr.eq(0)
        return m
