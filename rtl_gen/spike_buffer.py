"""Spike buffer: spike words of one layer's sweep, replayed one spike per cycle as events."""
from __future__ import annotations

from collections import namedtuple

from amaranth.hdl import Module, Mux, Signal
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
        Release events (from the producing sweep's start with dual-port banks, after it with
        single-port ones).
    events : Out(stream.Signature(event_layout))
        One spike per handshake, in sweep order, lowest lane first: channel ``group * P + lane``,
        value 1.
    pending : Out(1)
        Spikes remain.
    rewind : In(1), only with ``rewind=True``
        Pulse: replay the stored words again from the first (for the next consumer of a source
        with several); the words stay. Nothing may be pushed in the pulse's cycle.

    With ``single_port=True`` the words live outside (an SPRAM region, ``rtl_gen.spram``) behind
    these members instead of an internal memory:

    wr_addr, wr_data, wr_en : Out
        Write port (a push).
    rd_addr : Out; rd_data : In(word_layout); rd_req : Out(1)
        Registered read port, used in every cycle without a push; ``rd_req`` (words pending or a
        push) asks for it.

    Latency and throughput: replay is one spike per cycle with no bubble between words. A word
    pushed in cycle k can be replayed from cycle k+3 (the push is registered, written in k+1, read
    in k+1 through the transparent port, and loaded into the word register in k+2); ``pending`` is
    high from cycle k+1. Single-ported (words outside), the read data feeds the events directly: a
    word pushed in cycle k can be replayed from cycle k+1, but only after one cycle without a push
    (the controller leaves at least one between a fire sweep's last push and the integration).
    After ``rewind`` in cycle k (dual-ported), the first spike is offered from cycle k+2 (the read
    port is addressed at word 0 in k, the word register loaded in k+1); single-ported, from k+1 (word 0
    is read in k: ``rd_req`` is high in the pulse's cycle).
    """

    # Dual-ported: a word pushed in cycle k is replayed from k+3: the push register (k+1, written and
    # read through the transparent port), then the word register (loaded in k+2).
    REPLAY_LATENCY = 3

    # Dual-ported: after a rewind pulse in cycle k the first spike is offered in k+2.
    REWIND_LATENCY = 2

    # Single-ported: after a rewind pulse in cycle k the first spike is offered in k+1 (read data direct).
    SINGLE_PORT_REWIND_LATENCY = 1

    def __init__(self, word_layout: data.StructLayout, words: int, lanes: int,
                 event_layout: data.StructLayout, single_port: bool = False, rewind: bool = False):
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
        if rewind:
            members["rewind"] = In(1)
        self.with_rewind = rewind
        if single_port:
            addr = bits_for(self.depth - 1)
            members.update({"wr_addr": Out(addr), "wr_data": Out(word_layout), "wr_en": Out(1),
                            "rd_addr": Out(addr), "rd_data": In(word_layout), "rd_req": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        if self.single_port:
            req = self.pending | self.push.valid
            m.d.comb += self.rd_req.eq(req | self.rewind if self.with_rewind else req)
            self._replay_direct(m, _Port(addr=self.wr_addr, data=self.wr_data, en=self.wr_en),
                                _Port(addr=self.rd_addr, data=self.rd_data, en=None))
        else:
            m.submodules.words = mem = Memory(shape=self.word_layout, depth=self.depth, init=[])
            wp_port = mem.write_port()
            self._replay_prefetched(m, wp_port, mem.read_port(transparent_for=(wp_port,)))
        return m

    def _write_side(self, m, wp_port, push=None):
        """Pushes (``push``, or the ``push`` member) go to the write pointer ``wp`` (returned),
        which ``clear`` resets."""
        push = self.push if push is None else push
        wp = Signal(bits_for(self.depth))
        m.d.comb += [wp_port.addr.eq(wp), wp_port.data.eq(push.payload),
                     wp_port.en.eq(push.valid)]
        with m.If(push.valid):
            m.d.sync += wp.eq(wp + 1)
        with m.If(self.clear):
            m.d.sync += wp.eq(0)
        return wp

    def _serialise(self, m, word, consumed, valid):
        """Events from ``word`` (its mask less the ``consumed`` lanes), lowest lane first, while
        ``valid``; returns (taken, last): an event is handshaken, and it was the word's last."""
        lanes = self.lanes
        remaining = Signal(lanes)
        lowest = Signal(lanes)
        index = Signal(bits_for(lanes - 1))
        m.d.comb += [remaining.eq(word.mask & ~consumed), lowest.eq(remaining & (~remaining + 1))]
        for bit in reversed(range(lanes)):
            with m.If(remaining[bit]):
                m.d.comb += index.eq(bit)
        ev = self.events.payload
        m.d.comb += [self.events.valid.eq(valid & self.enable),
                     ev.c.eq(word.group * lanes + index), ev.y.eq(word.y), ev.x.eq(word.x),
                     ev.value.eq(1)]
        taken = self.events.valid & self.events.ready
        last = Signal()
        m.d.comb += last.eq(~(remaining & ~lowest).any())
        with m.If(taken):
            m.d.sync += consumed.eq(Mux(last, 0, consumed | lowest))
        return taken, last

    def _replay_direct(self, m, wp_port, rp_port):
        """Single-ported: the read port, addressed one word ahead, feeds the events directly."""
        wp = self._write_side(m, wp_port)
        rp = Signal(bits_for(self.depth))
        consumed = Signal(self.lanes)
        pending = rp != wp
        m.d.comb += self.pending.eq(pending)
        taken, last = self._serialise(m, rp_port.data, consumed, pending)
        advance = taken & last
        with m.If(advance):
            m.d.sync += rp.eq(rp + 1)
        m.d.comb += rp_port.addr.eq(rp + advance)
        with m.If(self.clear | self.rewind if self.with_rewind else self.clear):
            m.d.sync += [rp.eq(0), consumed.eq(0)]
            m.d.comb += rp_port.addr.eq(0)

    def _replay_prefetched(self, m, wp_port, rp_port):
        """Dual-ported: pushes are registered before the RAM's write port; the word being
        serialised sits in a register; the read port, addressed at the next unread word
        (transparent for the write port), refills it. So the RAM's ports see registers only."""
        push = stream.Signature(self.word_layout).create(path=("push_reg",))
        m.d.sync += [push.valid.eq(self.push.valid), push.payload.eq(self.push.payload)]
        wp = self._write_side(m, wp_port, push)
        rp = Signal(bits_for(self.depth))           # the next word to load from the RAM
        word = Signal(self.word_layout)
        full = Signal()
        consumed = Signal(self.lanes)
        m.d.comb += self.pending.eq(full | (rp != wp) | push.valid)
        taken, last = self._serialise(m, word, consumed, full)
        load = Signal()
        m.d.comb += load.eq((rp != wp) & (~full | (taken & last)))
        with m.If(load):
            m.d.sync += [word.eq(rp_port.data), full.eq(1), rp.eq(rp + 1)]
        with m.Elif(taken & last):
            m.d.sync += full.eq(0)
        m.d.comb += rp_port.addr.eq(Mux(load, rp + 1, rp))
        restart = self.clear | self.rewind if self.with_rewind else self.clear
        with m.If(restart):
            m.d.sync += [rp.eq(0), full.eq(0), consumed.eq(0)]
            m.d.comb += rp_port.addr.eq(0)
