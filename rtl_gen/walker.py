"""Fan-out walker: turns input events (c, y, x, value) into one synaptic-update command per cycle."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .plan import TargetPlan, bits_for, rom_depth


def event_layout(target: TargetPlan, value_shape) -> data.StructLayout:
    """Payload of an input event: source neuron (c, y, x) before the pool, and its value."""
    c_in, h_in, w_in = target.in_shape
    return data.StructLayout({"c": bits_for(c_in - 1), "y": bits_for(h_in - 1),
                              "x": bits_for(w_in - 1), "value": value_shape})


def update_layout(target: TargetPlan, value_shape) -> data.StructLayout:
    """Payload of an update command, common to all lanes (lane l serves channel group * P + l)."""
    return data.StructLayout({"group": bits_for(target.groups - 1),
                              "maddr": bits_for(target.depth_used - 1),
                              "waddr": bits_for(len(target.weight_roms[0]) - 1),
                              "value": value_shape})


def pack_pairs(entries, low_bits: int) -> list[int]:
    """ROM words of (low, high) pairs: low | high << low_bits."""
    return [out | (wt << low_bits) for out, wt in entries]


class FanOutWalker(wiring.Component):
    """Walks the fan-out of each input event: reachable rows x reachable columns x channel groups.

    A target with ``channel_groups`` (grouped, depthwise and identity maps of graph networks) walks,
    for an event of input channel c, only the lane groups first(c) .. first(c) + count(c) - 1 that hold
    output channels c reaches (a ROM of (first, count) per input channel); the lanes' weight ROMs hold
    zeros for the channels of a group that c does not reach.

    Members
    -------
    events : In(stream.Signature(event_layout))
        One event per handshake. An event with value 0 or an empty fan-out is a no-op.
    updates : Out(stream.Signature(update_layout, always_ready=True))
        One command per cycle while walking: membrane address ``group * Ho * Wo + oy * Wo + ox``
        and weight address ``(group * C_in + c) * kh * kw + ky * kw + kx`` (lane-local), from a
        register: the address arithmetic (table reads, products, sums) has a cycle of its own and
        the lanes' weight ROMs see a register's output.
    busy : Out(1)
        An event is being walked or its last command is still in the output register.

    Latency and throughput: an event accepted at cycle k issues (computes) its L = rows * cols *
    groups commands at cycles k+1 .. k+L, each on ``updates`` one cycle later; the walker is ready
    again in cycle k+L (k+1 for a no-op), so back-to-back events cost exactly max(1, L) cycles each,
    with no bubble. With ``interval=2`` (single-port banks: read, then write) it issues one command
    every other cycle, k+1, k+3 .. k+2L-1, and is ready again in k+2L: an event costs max(1, 2L)
    cycles, and two commands are always at least two cycles apart, also across events.
    """

    # A command issued (computed) in cycle k is on ``updates`` in k+1: the output register.
    OUTPUT_LATENCY = 1

    def __init__(self, target: TargetPlan, value_shape, interval: int = 1):
        self.target = target
        self.value_shape = value_shape
        self.interval = interval
        super().__init__({
            "events": In(stream.Signature(event_layout(target, value_shape))),
            "updates": Out(stream.Signature(update_layout(target, value_shape), always_ready=True)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        t = self.target
        c_in, h_in, w_in = t.in_shape
        _, h_out, w_out = t.out_shape
        kh, kw = t.kernel
        rows, cols = t.rows, t.cols
        row_low = bits_for(max(e[0] for e in rows.entries))
        col_low = bits_for(max(e[0] for e in cols.entries))
        row_w = row_low + bits_for(max(e[1] for e in rows.entries))
        col_w = col_low + bits_for(max(e[1] for e in cols.entries))

        m.submodules.row_counts = row_counts = Memory(
            shape=unsigned(bits_for(rows.stride)), depth=rom_depth(h_in), init=rows.counts)
        m.submodules.col_counts = col_counts = Memory(
            shape=unsigned(bits_for(cols.stride)), depth=rom_depth(w_in), init=cols.counts)
        m.submodules.row_entries = row_entries = Memory(
            shape=unsigned(row_w), depth=rom_depth(len(rows.entries)), init=pack_pairs(rows.entries, row_low))
        m.submodules.col_entries = col_entries = Memory(
            shape=unsigned(col_w), depth=rom_depth(len(cols.entries)), init=pack_pairs(cols.entries, col_low))
        rc = row_counts.read_port(domain="comb")
        cc = col_counts.read_port(domain="comb")
        re = row_entries.read_port(domain="comb")
        ce = col_entries.read_port(domain="comb")

        active = Signal()
        value = Signal(self.value_shape)
        nrows = Signal.like(rc.data)
        ncols = Signal.like(cc.data)
        i = Signal.like(rc.data)
        j = Signal.like(cc.data)
        g = Signal(bits_for(t.groups - 1))
        # Running bases instead of products (each register steps by a constant): the row and
        # column table addresses y * stride + i and x * stride + j, and the group's offsets
        # g * Ho * Wo (membranes) and (g * C_in + c) * kh * kw (weights).
        row_addr = Signal(bits_for(h_in * rows.stride - 1))
        col_start = Signal(bits_for(w_in * cols.stride - 1))
        col_addr = Signal.like(col_start)
        group_w = c_in * kh * kw
        m_base = Signal(bits_for(t.groups * t.out_hw - 1))
        c_base = Signal(bits_for(t.groups * group_w - 1) if t.channel_groups else bits_for(c_in * kh * kw - 1))
        w_base = Signal(bits_for(t.groups * group_w - 1))

        payload = self.events.payload
        m.d.comb += [rc.addr.eq(payload.y), cc.addr.eq(payload.x),
                     re.addr.eq(row_addr), ce.addr.eq(col_addr)]

        # the event's lane groups: every group, or first(c) .. last(c) from the group-range ROM
        first_g, g_first, g_last, reaches, m_first, m_start = 0, 0, t.groups - 1, 1, 0, 0
        if t.channel_groups is not None:
            g_last, g_first, m_start = Signal.like(g), Signal.like(g), Signal.like(m_base)
            gw = bits_for(t.groups)
            m.submodules.group_ranges = ranges = Memory(
                shape=unsigned(2 * gw), depth=rom_depth(c_in),
                init=[first | (max(first + count - 1, 0) << gw) for first, count in t.channel_groups])
            gr = ranges.read_port(domain="comb")
            m.submodules.group_counts = counts = Memory(
                shape=unsigned(1), depth=rom_depth(c_in), init=[int(count > 0) for _, count in t.channel_groups])
            gc = counts.read_port(domain="comb")
            m.d.comb += [gr.addr.eq(payload.c), gc.addr.eq(payload.c)]
            first_g, reaches = gr.data[:gw], gc.data
            m_first = first_g * t.out_hw
            with m.If(self.events.valid & self.events.ready):
                m.d.sync += [g_last.eq(gr.data[gw:]), g_first.eq(first_g), m_start.eq(m_first)]

        w_start = payload.c * (kh * kw)
        if t.channel_groups is not None:
            w_start = first_g * group_w + w_start
        last_g = g == g_last
        last_j = j == ncols - 1
        last_i = i == nrows - 1
        if self.interval == 1:
            issue = active
            last = active & last_g & last_j & last_i
            ready = ~active | last
        else:
            issue = Signal()
            pause = Signal()             # the cycle after an issue: the lanes write
            finishing = Signal()         # the pause after the last issue
            m.d.comb += issue.eq(active & ~pause & ~finishing)
            last = finishing
            ready = ~active | finishing
            m.d.sync += pause.eq(issue)
            with m.If(issue & last_g & last_j & last_i):
                m.d.sync += finishing.eq(1)
            with m.Elif(finishing):
                m.d.sync += finishing.eq(0)
        m.d.comb += [self.events.ready.eq(ready), self.busy.eq(active | self.updates.valid)]

        with m.If(issue):
            with m.If(last_g):
                m.d.sync += [g.eq(g_first), m_base.eq(m_start), w_base.eq(c_base)]
                with m.If(last_j):
                    m.d.sync += [j.eq(0), i.eq(i + 1), col_addr.eq(col_start), row_addr.eq(row_addr + 1)]
                with m.Else():
                    m.d.sync += [j.eq(j + 1), col_addr.eq(col_addr + 1)]
            with m.Else():
                m.d.sync += [g.eq(g + 1), m_base.eq(m_base + t.out_hw), w_base.eq(w_base + group_w)]
        with m.If(self.events.valid & ready):
            m.d.sync += [
                active.eq((payload.value != 0) & (rc.data != 0) & (cc.data != 0) & reaches),
                value.eq(payload.value),
                nrows.eq(rc.data), ncols.eq(cc.data), i.eq(0), j.eq(0), g.eq(first_g),
                row_addr.eq(payload.y * rows.stride), col_start.eq(payload.x * cols.stride),
                col_addr.eq(payload.x * cols.stride), m_base.eq(m_first),
                c_base.eq(w_start), w_base.eq(w_start),
            ]
        with m.Elif(last):
            m.d.sync += active.eq(0)

        out = self.updates.payload
        m.d.sync += [
            self.updates.valid.eq(issue),
            out.group.eq(g),
            out.maddr.eq(m_base + re.data[:row_low] + ce.data[:col_low]),
            out.waddr.eq(w_base + re.data[row_low:] + ce.data[col_low:]),
            out.value.eq(value),
        ]
        return m
