"""Spike buffer: spike words of one layer's sweep, replayed one spike per cycle as events."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .plan import bits_for, pow2_depth


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

    Latency and throughput: a word pushed in cycle k can be replayed from cycle k+1; replay is one
    spike per cycle (the read port is addressed one word ahead, transparent for the write port),
    with no bubble between words.
    """

    def __init__(self, word_layout: data.StructLayout, words: int, lanes: int,
                 event_layout: data.StructLayout):
        self.word_layout = word_layout
        self.depth = pow2_depth(words)
        self.lanes = lanes
        super().__init__({
            "clear": In(1),
            "push": In(stream.Signature(word_layout, always_ready=True)),
            "enable": In(1),
            "events": Out(stream.Signature(event_layout)),
            "pending": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
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
