"""Max-pool unit: a max-pool node over a spiking source layer, event by event (rate or binary coding)."""
from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .checks import check_int
from .fire import spike_word_layout
from .pipeline import delayed
from .lane_banks import LaneBankedMemory
from .plan import bits_for, rom_depth
from .pool_tables import check_pool_output, check_tuple, pool_axis_offsets, pool_axis_table
from .walker import pack_pairs

OWNER = "MaxPoolUnit"


class MaxPoolUnit(wiring.Component):
    """A max-pool node p over a spiking source layer, updated by the source's spike events.

    Rate coding (the default): the node keeps D_i(t), the spike count of source neuron i up to step
    t, and D_p(t), the maximum of D_i(t) over the non-padding cells of p's window; p spikes at step t
    when D_p(t) > D_p(t-1) (by exactly 1, as each count grows by at most 1 per step). Per source spike
    (c, y, x): count = count + 1; then for every pool neuron p whose window holds (c, y, x) as a
    non-padding cell (F of them, ``rows(y) * cols(x)``, row-major order of the (pool row, pool column)
    pairs, from ROM tables per axis as in the fan-out walker): when the new count exceeds max[p],
    max[p] = count and p spikes. A pool neuron spikes at most once per step however many of its
    cells spike, as long as every source neuron spikes at most once per step.

    Binary (radix) coding (``binary=True``, docs/arithmetic.md 5.4, ``ecc_hw.graph.radix``): a spike at
    step t weighs 2^(T-t), MSB first; D_i(t) = 2 D_i(t-1) + s_i(t), D_p(t) the window maximum of D_i(t)
    and s_p(t) = D_p(t) - 2 D_p(t-1): p spikes at step t exactly when a cell of its tied set (the cells
    with D_i(t-1) = D_p(t-1); initially every cell) fires at t; then the tied cells that do not fire at
    t leave the set, and when p does not fire the set stays. Per pool neuron the unit keeps one word
    (``state_layout``): ``tied`` and ``survivors``, masks of kh * kw bits (bit ky * kw + kx for window
    cell (ky, kx), padding cells included: they never fire) and ``fired_at``, the last step p spiked
    (0: not yet). The tied set is all ones while fired_at = 0, ``survivors`` once step fired_at is over,
    and during step fired_at itself ``tied`` is the set before the step and ``survivors`` its cells that
    fired so far. Per source spike at step t, for every reachable p (the same walk as rate coding, with
    the cell's window offset j from a ROM table per axis): if fired_at = t, ``survivors |= bit j`` when
    ``tied[j]`` (p already spiked this step); else with cur = (survivors if fired_at else all ones), when
    cur[j] p spikes and the word becomes (tied = cur, survivors = bit j, fired_at = t), otherwise it stays.
    There are no counts (``count_banks`` is None).

    Memories: lane-banked (``rtl_gen.lane_banks``, registered reads, one bank per lane holding a channel,
    ``banks`` = min(P, C)): channel c is bank c % P, so that the clear takes ceil(C / P) words per map
    position, as a layer's membrane banks do. Rate coding: the counts of the source neurons (word
    (c // P) * H * W + y * W + x, ``count_words`` per bank) and the maxima of the pool neurons (word
    (c // P) * Ho * Wo + py * Wo + px, ``max_words`` per bank), ``bits_for(T)`` bits wide, after elaboration
    the attributes ``count_banks`` and ``max_banks``; binary coding, the pool words (``state_layout``) in
    ``max_banks``. An all-zero word is a fresh pool neuron in rate coding.

    Members
    -------
    events : In(stream.Signature(event_layout))
        One source spike (c, y, x) per handshake (``rtl_gen.walker.event_layout`` of a target whose
        ``in_shape`` is (C, H, W), value shape ``unsigned(1)``: a spike buffer drives it). ``value`` is
        ignored: every event is a spike. ``ready`` is high whenever the unit is idle.
    t : In(range(T + 1)), binary coding only
        The step 1..T of the events being offered, sampled with each accepted event (it may change as
        soon as the step's last event is accepted, its pool updates still in flight). All events of step
        t come before any of step t + 1, steps in order 1..T per image, each source neuron at most once
        per step (any order within a step); the clear sweep separates images.
    spikes : Out(stream.Signature(spike_word_layout(ceil(C / P), Ho, Wo, P), always_ready=True))
        One word per pool spike, at most one per cycle: group c // P, pool row, pool column and
        mask ``1 << (c % P)``.
    neuron : Out(bits_for(C * Ho * Wo - 1))
        Channel-major index of lane 0's neuron of ``spikes``, ``((group * P) * Ho + y) * Wo + x``
        (valid with ``spikes.valid``; lane l's neuron is ``neuron + l * Ho * Wo``).
    clear_en : In(1); clear_addr : In(clear_bits)
        While ``clear_en``, count word ``clear_addr`` (if below ``count_words``, rate coding) and max word
        ``clear_addr`` (if below ``max_words``) of every bank are written 0 (binary coding: fired_at 0,
        both masks all ones). ``clear_depth`` cycles with clear_addr = 0 .. clear_depth - 1 clear
        everything (binary coding too: max(count_words, max_words)); no event may be in flight (``busy``
        low, no handshake) meanwhile.
    busy : Out(1)
        An event is in flight: a read, compare or write of it is still to come.

    Latency and throughput (both codes alike): an event taken in cycle a (``valid & ready``) goes into
    the input register (its addresses and table reads computed from the payload) and is issued in cycle
    i >= a + 1, as soon as the previous event has addressed its last pool neuron: i is a + 1 when the
    unit is idle, else the previous event's i + max(1, F_prev). ``events.ready`` is high while the
    register is empty or issues, so back-to-back events cost exactly max(1, F) cycles each. With F
    reachable pool neurons p_0 .. p_{F-1} (F may be 0) an event reads its count in i, registers the read
    data in i+1 (forwarding the new count of either of the two events ahead when it is the same neuron)
    and writes count + 1 in i+2 (``COUNT_WRITE_LATENCY`` after a = i - 1; binary coding: these stages
    only carry the event, for ``busy``). Pool neuron p_j's address (and window offset) is computed in
    i+j, read from the pool memory in i+1+j (``MAX_READ_LATENCY``), the read data registered in i+2+j
    (forwarding the result of the update one ahead, being made in that cycle, or of the one two ahead,
    written in this one's read cycle, when it is the same neuron: an event's own neurons are distinct),
    updated (rate: compared with the new count) in i+3+j, where p_j's word is written and its spike word
    is on ``spikes`` (``SPIKE_LATENCY`` after a = i - 1). ``busy`` is high from a+1 to i+2+F and, with no
    later event, low from i+3+F (``BUSY_LATENCY`` + F after a = i - 1) on. The latencies are stated for
    an event that finds the unit idle (i = a + 1); a waiting event keeps them from i - 1.

    Parameters (keyword-only)
    ----------
    input_shape : (C, H, W), each at least 1
        The source layer's map.
    output_shape : (C, Ho, Wo)
        The pool's map: floor mode, or ceil mode (Ho, Wo one larger where the last window runs past
        the padded map).
    kernel, stride, dilation : (h, w), each at least 1
    padding : (top, left, bottom, right), each at least 0
    lanes : int, a power of two
        P: pool channel c is lane c % P of group c // P in the spike words.
    timesteps : int, at least 1
        T: the counts are ``bits_for(T)`` bits wide (binary coding: ``fired_at`` and ``t``).
    clear_bits : int or None
        Width of ``clear_addr``, at least ``bits_for(clear_depth - 1)`` (the default).
    binary : bool
        Binary (radix) coding instead of rate coding (default False).
    """

    # Relative to a = i - 1 (i: the issue cycle; i = a + 1 for an event that finds the unit idle):
    # the count is read in i (from the input register), the read data registered in i+1 and count + 1
    # written in i+2 = a+3.
    COUNT_WRITE_LATENCY = 3
    # p_j's address is computed in i+j and its max word read in i+1+j = a+2+j.
    MAX_READ_LATENCY = 2
    # p_j's compare, max write and spike word in i+3+j = a+4+j: read data registered in between.
    SPIKE_LATENCY = 4
    # ``busy`` is low from i+3+F = a+BUSY_LATENCY+F when no event follows (an event with F = 0 is in
    # flight to its count write in i+2).
    BUSY_LATENCY = 4

    def __init__(self, *, input_shape, output_shape, kernel, stride, padding, dilation, lanes: int,
                 timesteps: int, clear_bits: int | None = None, binary: bool = False):
        if not isinstance(binary, bool):
            raise ValueError(f"{OWNER}: binary must be a bool, not {binary!r}")
        self.binary = binary
        self.input_shape = check_tuple(OWNER, "input_shape", input_shape, 3, 1)
        self.output_shape = check_tuple(OWNER, "output_shape", output_shape, 3, 1)
        self.kernel = check_tuple(OWNER, "kernel", kernel, 2, 1)
        self.stride = check_tuple(OWNER, "stride", stride, 2, 1)
        self.padding = check_tuple(OWNER, "padding", padding, 4, 0)
        self.dilation = check_tuple(OWNER, "dilation", dilation, 2, 1)
        check_int(OWNER, "lanes", lanes, 1)
        if lanes & (lanes - 1):
            raise ValueError(f"{OWNER}: lanes must be a power of two, not {lanes}")
        self.lanes = lanes
        self.timesteps = check_int(OWNER, "timesteps", timesteps, 1)
        channels, height, width = self.input_shape
        if self.output_shape[0] != channels:
            raise ValueError(f"{OWNER}: output_shape {self.output_shape} must have the {channels} channels "
                             f"of input_shape")
        check_pool_output(OWNER, (height, width), self.output_shape, self.kernel, self.stride, self.padding,
                          self.dilation)
        _, out_h, out_w = self.output_shape
        self.groups = -(-channels // lanes)
        self.source_words = channels * height * width
        self.pool_words = channels * out_h * out_w
        self.banks = min(lanes, channels)            # a bank per lane that holds a channel
        self.count_words = self.groups * height * width
        self.max_words = self.groups * out_h * out_w
        if clear_bits is None:
            clear_bits = bits_for(self.clear_depth - 1)
        self.clear_bits = check_int(OWNER, "clear_bits", clear_bits, bits_for(self.clear_depth - 1))
        top, left, _, _ = self.padding
        self.rows = pool_axis_table(height, out_h, self.kernel[0], self.stride[0], self.dilation[0], top, out_w)
        self.cols = pool_axis_table(width, out_w, self.kernel[1], self.stride[1], self.dilation[1], left, 1)
        self.event_layout = data.StructLayout({"c": bits_for(channels - 1), "y": bits_for(height - 1),
                                               "x": bits_for(width - 1), "value": unsigned(1)})
        self.spike_layout = spike_word_layout(self.groups, out_h, out_w, lanes)
        members = {
            "events": In(stream.Signature(self.event_layout)),
            "spikes": Out(stream.Signature(self.spike_layout, always_ready=True)),
            "neuron": Out(bits_for(self.pool_words - 1)),
            "clear_en": In(1),
            "clear_addr": In(unsigned(self.clear_bits)),
            "busy": Out(1),
        }
        self.state_layout = None
        if binary:
            cells = self.kernel[0] * self.kernel[1]
            self.state_layout = data.StructLayout({"tied": unsigned(cells), "survivors": unsigned(cells),
                                                   "fired_at": unsigned(bits_for(self.timesteps))})
            self.row_offsets = pool_axis_offsets(self.rows, height, self.kernel[0], self.stride[0],
                                                 self.dilation[0], top, self.kernel[1])
            self.col_offsets = pool_axis_offsets(self.cols, width, self.kernel[1], self.stride[1],
                                                 self.dilation[1], left, 1)
            members["t"] = In(range(self.timesteps + 1))
        super().__init__(members)

    @property
    def clear_depth(self) -> int:
        """Cycles of the clear sweep: the deeper of the count and max banks' used words (binary coding
        alike, though it has no counts, so that the sweep does not depend on the code)."""
        return max(self.count_words, self.max_words)

    def fan_out(self, y: int, x: int) -> int:
        """F of a source spike at row y, column x: the pool neurons it reaches (any channel)."""
        return self.rows.counts[y] * self.cols.counts[x]

    def elaborate(self, platform):
        m = Module()
        channels, height, width = self.input_shape
        _, out_h, out_w = self.output_shape
        lanes = self.lanes
        lane_bits = lanes.bit_length() - 1
        count_shape = unsigned(bits_for(self.timesteps))
        rows, cols = self.rows, self.cols

        binary = self.binary
        cells = self.kernel[0] * self.kernel[1]
        banked = {"banks": self.banks, "lane_bits": max(1, lane_bits), "clear_en": self.clear_en,
                  "clear_addr": self.clear_addr}
        if binary:
            word_shape = self.state_layout
            fresh = word_shape.const({"tied": (1 << cells) - 1, "survivors": (1 << cells) - 1, "fired_at": 0})
            maxima = LaneBankedMemory(name="pool_state", shape=word_shape, depth=self.max_words,
                                      clear_value=fresh, **banked)
            counts = None
        else:
            word_shape = count_shape
            maxima = LaneBankedMemory(name="maxima", shape=count_shape, depth=self.max_words, **banked)
            counts = LaneBankedMemory(name="counts", shape=count_shape, depth=self.count_words, **banked)
            counts.add_to(m)
        maxima.add_to(m)
        self.count_banks, self.max_banks = counts, maxima

        row_low = bits_for(max(e[0] for e in rows.entries))
        row_w = row_low + bits_for(max(e[1] for e in rows.entries))
        m.submodules.row_counts = row_counts = Memory(
            shape=unsigned(bits_for(rows.stride)), depth=rom_depth(height), init=rows.counts)
        m.submodules.col_counts = col_counts = Memory(
            shape=unsigned(bits_for(cols.stride)), depth=rom_depth(width), init=cols.counts)
        m.submodules.row_entries = row_entries = Memory(
            shape=unsigned(row_w), depth=rom_depth(len(rows.entries)), init=pack_pairs(rows.entries, row_low))
        m.submodules.col_entries = col_entries = Memory(
            shape=unsigned(bits_for(max(e[1] for e in cols.entries))), depth=rom_depth(len(cols.entries)),
            init=[p for _, p in cols.entries])
        rc = row_counts.read_port(domain="comb")
        cc = col_counts.read_port(domain="comb")
        re = row_entries.read_port(domain="comb")
        ce = col_entries.read_port(domain="comb")

        # accept (cycle a): the event's addresses and table reads into the input register (``*_r``)
        payload = self.events.payload
        active = Signal()                # walking: p_1 .. p_{F-1} of the issued event still to address
        valid_r = Signal()
        issue = Signal()                 # the registered event starts its walk: p_0's address this cycle
        m.d.comb += [issue.eq(valid_r & ~active), self.events.ready.eq(~valid_r | issue),
                     rc.addr.eq(payload.y), cc.addr.eq(payload.x)]
        pool_bits = bits_for(self.pool_words - 1)
        max_bits = bits_for(self.max_words - 1)
        row_bits, col_bits = bits_for(height * rows.stride - 1), bits_for(width * cols.stride - 1)
        taken = {    # key: (value, width)
            "nrows": (rc.data, len(rc.data)), "ncols": (cc.data, len(cc.data)),
            "row_start": (payload.y * rows.stride, row_bits), "col_start": (payload.x * cols.stride, col_bits),
            "m_base": ((payload.c >> lane_bits) * (out_h * out_w), max_bits),            # (c // P) Ho Wo
            "n_base": ((payload.c >> lane_bits) * (lanes * out_h * out_w), pool_bits),   # (c // P) P Ho Wo
            "group": (payload.c >> lane_bits, bits_for(self.groups - 1)),
            "lane": (payload.c & (lanes - 1), max(1, lane_bits)),
        }
        if binary:
            taken["step"] = (self.t, len(self.t))
        else:
            taken["src"] = ((payload.c >> lane_bits) * (height * width) + payload.y * width + payload.x,
                            bits_for(self.count_words - 1))
        registered = {key: Signal(width, name=f"{key}_r") for key, (_, width) in taken.items()}
        with m.If(self.events.valid & self.events.ready):
            m.d.sync += [registered[key].eq(value) for key, (value, _) in taken.items()]
            m.d.sync += valid_r.eq(1)
        with m.Elif(issue):
            m.d.sync += valid_r.eq(0)

        # the walk: in the issue cycle from the input register, then from the walk's registers
        walk = {key: Signal.like(registered[key], name=f"{key}_w") for key in registered if key != "src"}
        cur = {key: Mux(issue, registered[key], walk[key]) for key in walk}
        i = Signal.like(rc.data)
        j = Signal.like(cc.data)
        row_addr = Signal(row_bits)
        col_addr = Signal(col_bits)
        cur_i, cur_j = Mux(issue, 0, i), Mux(issue, 0, j)
        cur_row, cur_col = Mux(issue, registered["row_start"], row_addr), Mux(issue, registered["col_start"], col_addr)
        walking = Signal()               # p_j's address is computed this cycle
        m.d.comb += [walking.eq(active | (issue & (registered["nrows"] != 0) & (registered["ncols"] != 0))),
                     re.addr.eq(cur_row), ce.addr.eq(cur_col)]
        with m.If(issue):
            m.d.sync += [walk[key].eq(registered[key]) for key in walk]
        with m.If(walking):
            with m.If(cur_j == cur["ncols"] - 1):
                m.d.sync += [j.eq(0), i.eq(cur_i + 1), col_addr.eq(cur["col_start"]), row_addr.eq(cur_row + 1),
                             active.eq(cur_i != cur["nrows"] - 1)]
            with m.Else():
                m.d.sync += [j.eq(cur_j + 1), i.eq(cur_i), col_addr.eq(cur_col + 1), row_addr.eq(cur_row),
                             active.eq(1)]
        if binary:
            offset_shape = unsigned(bits_for(cells - 1))
            m.submodules.row_offsets = row_offsets = Memory(
                shape=offset_shape, depth=rom_depth(len(rows.entries)), init=self.row_offsets)
            m.submodules.col_offsets = col_offsets = Memory(
                shape=offset_shape, depth=rom_depth(len(cols.entries)), init=self.col_offsets)
            ro = row_offsets.read_port(domain="comb")
            co = col_offsets.read_port(domain="comb")
            m.d.comb += [ro.addr.eq(cur_row), co.addr.eq(cur_col)]

        # count stages (rate coding): read in the issue cycle i; c1 (i+1) read data, registered or
        # forwarded; c2 (i+2) increment and write; from i+3 the new count is in ``new`` (held for the
        # compares of the event's pool neurons, the last in i+2+F, before the next event's c2 ends).
        # Binary coding: only the valid bits (``busy`` of an event with F = 0 to i+2, as in rate coding).
        if binary:
            valid_c1 = delayed(m, {"valid": issue}, "c1")[0]
            valid_c2 = delayed(m, {"valid": valid_c1}, "c2")[0]
        else:
            # a source neuron: lane c % P and word (c // P) H W + y W + x of that lane's count bank
            src, src_lane = registered["src"], registered["lane"]
            valid_c1, src_c1, lane_c1 = delayed(m, {"valid": issue, "src": src, "lane": src_lane}, "c1")
            valid_c2, src_c2, lane_c2 = delayed(m, {"valid": valid_c1, "src": src_c1, "lane": lane_c1}, "c2")
            m.d.comb += [counts.read_addr.eq(src), counts.read_lane.eq(lane_c1)]
            count_c2 = Signal(count_shape)
            new_c2 = Signal(count_shape)
            new = Signal(count_shape)        # the count of the last event past c2
            near_c1 = Signal()               # the event one ahead writes this count in c2 while this one is in c1
            far_c1 = Signal()                # the event two ahead wrote it in this one's read cycle
            m.d.comb += new_c2.eq(count_c2 + 1)
            m.d.sync += [near_c1.eq(valid_c1 & (src_c1 == src) & (lane_c1 == src_lane)),
                         far_c1.eq(valid_c2 & (src_c2 == src) & (lane_c2 == src_lane)),
                         count_c2.eq(Mux(near_c1, new_c2, Mux(far_c1, new, counts.read_data)))]
            with m.If(valid_c2):
                m.d.sync += new.eq(new_c2)

        # max stages: p_j's address in i+j; m0 (i+1+j) read; m1 (i+2+j) read data, registered or forwarded;
        # m2 (i+3+j) compare, write and spike word
        row_part, pool_row = re.data[:row_low], re.data[row_low:]
        pool_col = ce.data
        stage = {"valid": walking, "maddr": (cur["m_base"] + row_part + pool_col)[:max_bits],
                 "neuron": (cur["n_base"] + row_part + pool_col)[:pool_bits], "y": pool_row[:bits_for(out_h - 1)],
                 "x": pool_col[:bits_for(out_w - 1)], "group": cur["group"], "lane": cur["lane"]}
        if binary:
            stage.update({"offset": (ro.data + co.data)[:len(ro.data)], "step": cur["step"]})
        m0 = delayed(m, stage, "m0")
        m1 = delayed(m, dict(zip(stage, m0)), "m1")
        m2 = delayed(m, dict(zip(stage, m1)), "m2")
        valid_m0, maddr_m0, lane_m0 = m0[0], m0[1], m0[6]
        valid_m1, maddr_m1, lane_m1 = m1[0], m1[1], m1[6]
        valid_m2, maddr_m2, neuron_m2, y_m2, x_m2, group_m2, lane_m2 = m2[:7]
        old_m2 = Signal(word_shape)
        result_m2 = Signal(word_shape)   # p's word after the update (rate: max[p] after the compare)
        result_m3 = Signal(word_shape)
        # The updates one and two ahead may hit this one's neuron (of another event: an event's neurons are
        # distinct): the one ahead is updated in m2 while this one is in m1 (its result forwarded), the one
        # two ahead writes in this one's read cycle (its registered result forwarded); three or more ahead
        # have written before this one's read.
        near_m1 = Signal()
        far_m1 = Signal()
        forwarded = Signal(word_shape)   # old_m2's next value
        higher = Signal()                # p spikes
        m.d.sync += [near_m1.eq(valid_m1 & (maddr_m1 == maddr_m0) & (lane_m1 == lane_m0)),
                     far_m1.eq(valid_m2 & (maddr_m2 == maddr_m0) & (lane_m2 == lane_m0)),
                     old_m2.eq(forwarded), result_m3.eq(result_m2)]
        m.d.comb += [forwarded.eq(Mux(near_m1, Value.cast(result_m2),
                                      Mux(far_m1, Value.cast(result_m3), Value.cast(maxima.read_data)))),
                     maxima.read_addr.eq(maddr_m0), maxima.read_lane.eq(lane_m1),
                     maxima.write_addr.eq(maddr_m2), maxima.write_lane.eq(lane_m2)]
        if binary:
            offset_m2, step_m2 = m2[7:]
            ones = Const((1 << cells) - 1, cells)
            bit = Signal(cells)
            cur = Signal(cells)          # the tied set before this step, unless p already spiked in it
            same_step = Signal()
            m.d.comb += [bit.eq(Const(1, cells) << offset_m2), same_step.eq(old_m2.fired_at == step_m2),
                         cur.eq(Mux(old_m2.fired_at == 0, ones, old_m2.survivors)),
                         higher.eq(valid_m2 & ~same_step & (cur & bit).any()),
                         result_m2.eq(old_m2)]
            with m.If(same_step):
                with m.If((old_m2.tied & bit).any()):
                    m.d.comb += result_m2.survivors.eq(old_m2.survivors | bit)
            with m.Elif((cur & bit).any()):
                m.d.comb += [result_m2.tied.eq(cur), result_m2.survivors.eq(bit),
                             result_m2.fired_at.eq(step_m2)]
            m.d.comb += [maxima.write_data.eq(result_m2), maxima.write_en.eq(valid_m2)]
        else:
            m.d.comb += [higher.eq(valid_m2 & (new > old_m2)), result_m2.eq(Mux(higher, new, old_m2))]
            m.d.comb += [counts.write_addr.eq(src_c2), counts.write_lane.eq(lane_c2), counts.write_data.eq(new_c2),
                         counts.write_en.eq(valid_c2), maxima.write_data.eq(new), maxima.write_en.eq(higher)]

        word = self.spikes.payload
        m.d.comb += [
            self.spikes.valid.eq(higher),
            word.group.eq(group_m2), word.y.eq(y_m2), word.x.eq(x_m2),
            word.mask.eq(Const(1, lanes) << lane_m2 if lane_bits else 1),
            self.neuron.eq(neuron_m2),
            self.busy.eq(valid_r | active | valid_c1 | valid_c2 | valid_m0 | valid_m1 | valid_m2),
        ]
        return m
