"""Fire sweep: the per-step neuron update of one spiking layer over P lanes."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .checks import check_choice, check_int, check_ints
from .counters import advance_nested
from .pipeline import delayed
from .plan import bits_for, rom_depth, signed_bits_for


def spike_word_layout(groups: int, height: int, width: int, lanes: int) -> data.StructLayout:
    """One sweep cycle's spikes: channel group, row, column and a mask of the lanes that fired."""
    return data.StructLayout({"group": bits_for(groups - 1), "y": bits_for(height - 1),
                              "x": bits_for(width - 1), "mask": lanes})


class FireSweep(wiring.Component):
    """Sweeps every neuron of a spiking layer, P per cycle (one per lane).

    For lane l and lane-local address s = group * H * W + y * W + x (channel group * P + l):
    rate coding (``binary_steps`` = 0): ``V = V + I + bias + charge`` (``I``, layer 1's constant
    current, only when ``current_width`` is given), ``spike = V >= theta``, ``V -= theta`` on a
    spike (soft reset). Binary coding (radix, ``binary_steps`` = T): bit t = T - shift of the
    compare-and-subtract, MSB first: ``V = V + I + bias`` at the first bit only (shift = T - 1: the
    bias is the initial charge, added before the first compare), then ``spike = V >= theta << shift``,
    ``V -= theta << shift`` on a spike.

    Members
    -------
    start : In(1)
        Pulse: sweep from the next cycle.
    charge : In(unsigned(bits_for(tre_quotient + 1))), rate coding only
        The TRE charge e_n(t) of this step, stable during the sweep.
    shift : In(range(T)), binary coding with T > 1 only
        T - t for bit t, stable from the cycle after ``start`` to the end of the sweep (the
        threshold theta << shift is registered from it).
    rd_addr : Out
        Address s for the membrane (and current) banks, registered read.
    v_data : In(signed(width)).array(P); i_data : In(signed(current width)).array(P)
    wr_addr : Out; wr_en : Out(1); wr_data : Out(signed(width)).array(P)
    spikes : Out(stream.Signature(spike_word_layout, always_ready=True))
        Valid for every sweep cycle in which at least one lane fired.
    neuron : Out
        Channel-major index of lane 0's neuron of ``spikes`` (lane l: ``neuron + l * H * W``).
    busy : Out(1)

    Latency and throughput: after ``start`` in cycle S, addresses s = 0..D-1 are read in cycles
    S+1..S+D (D = groups * H * W); the read data (and the bias) are registered in S+2+s and address
    s is written, with its spikes out, in S+3+s (two cycles after its read: no hazard, as a sweep
    reads each address once); ``busy`` is high in S+1..S+D+3 (one cycle after the last write,
    for the spike buffer's registered push). With ``interval=2`` (single-port
    banks) there is no extra stage: address s is read in cycle S+1+2s and written in S+2+2s, so
    reads and writes never share a cycle; ``busy`` is high in S+1..S+2D.

    Parameters (keyword-only)
    ----------
    channels, height, width : int, at least 1
        The layer's output map (C, H, W); channel c lives in lane c % P.
    lanes : int, at least 1
        P.
    threshold : int, at least 1
        theta.
    bias : list of int, one per channel, or one per neuron (channel-major)
        The bias ROMs' words (their width fits the largest magnitude): per lane one word per group,
        or with a bias per neuron one per lane-local address s.
    membrane_width : int, at least 2
    tre_quotient : int, at least 0
        floor(TRE charge / T): the ``charge`` input holds 0..tre_quotient + 1.
    current_width : int or None
        Layer 1's constant current bits (image input); ``None``: no current.
    binary_steps : int, at least 0
        T with binary coding, 0 with rate coding.
    interval : 1 or 2
        Cycles between two reads: 1 with dual-port banks, 2 with single-port ones.
    """

    # ``start`` in cycle S sets the ``running`` register: address 0 is read in S+1.
    START_LATENCY = 1
    # Cycles ``busy`` stays high after the cycle of the last read. Dual-port banks: stage b (read data),
    # stage c (read data and bias registered again; write and spikes) and stage d (``settle``: the spike
    # buffer registers its push).
    DUAL_PORT_DRAIN = 3
    # Single-port banks: stage b (arithmetic on the read data; write and spikes).
    SINGLE_PORT_DRAIN = 1
    # Dual-port banks: address s's spikes are on ``spikes`` in S+3+s (``running``, stages b and c).
    SPIKE_LATENCY = 3

    def __init__(self, *, channels: int, height: int, width: int, lanes: int, threshold: int, bias: list[int],
                 membrane_width: int, tre_quotient: int = 0, current_width: int | None = None,
                 binary_steps: int = 0, interval: int = 1):
        owner = "FireSweep"
        for name, value in (("channels", channels), ("height", height), ("width", width), ("lanes", lanes),
                            ("threshold", threshold)):
            check_int(owner, name, value, 1)
        self.bias = check_ints(owner, "bias", bias)
        if len(self.bias) not in (channels, channels * height * width):
            raise ValueError(f"{owner}: bias must have one entry per channel ({channels}) or per neuron "
                             f"({channels * height * width}), not {len(self.bias)}")
        self.bias_per_neuron = len(self.bias) != channels
        check_int(owner, "membrane_width", membrane_width, 2)
        check_int(owner, "tre_quotient", tre_quotient, 0)
        if current_width is not None:
            check_int(owner, "current_width", current_width, 2)
        check_int(owner, "binary_steps", binary_steps, 0)
        check_choice(owner, "interval", check_int(owner, "interval", interval), (1, 2))
        self.channels, self.height, self.width = channels, height, width
        self.groups = -(-channels // lanes)
        self.depth_used = self.groups * height * width
        self.interval = interval
        self.lanes = lanes
        self.threshold = threshold
        self.membrane_width = membrane_width
        self.bias_width = signed_bits_for(max(abs(b) for b in self.bias))
        self.current_width = current_width
        self.binary_steps = binary_steps
        self.charge_shape = unsigned(bits_for(tre_quotient + 1))
        self.spike_layout = spike_word_layout(self.groups, height, width, lanes)
        members = {
            "start": In(1),
            "rd_addr": Out(bits_for(self.depth_used - 1)),
            "v_data": In(signed(membrane_width)).array(lanes),
            "wr_addr": Out(bits_for(self.depth_used - 1)),
            "wr_en": Out(1),
            "wr_data": Out(signed(membrane_width)).array(lanes),
            "spikes": Out(stream.Signature(self.spike_layout, always_ready=True)),
            "neuron": Out(bits_for(channels * height * width - 1)),
            "busy": Out(1),
        }
        if current_width is not None:
            members["i_data"] = In(signed(current_width)).array(lanes)
        if not self.binary_steps:
            members["charge"] = In(self.charge_shape)
        elif self.binary_steps > 1:
            members["shift"] = In(range(self.binary_steps))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        lanes, c_out, h, w = self.lanes, self.channels, self.height, self.width
        running = Signal()
        g = Signal(bits_for(self.groups - 1))
        y = Signal(bits_for(h - 1))
        x = Signal(bits_for(w - 1))
        s = Signal(bits_for(self.depth_used - 1))
        if self.interval == 1:
            step = running
        else:
            step = Signal()
            pause = Signal()             # the write cycle after each read
            m.d.comb += step.eq(running & ~pause)
            m.d.sync += pause.eq(step)
        with m.If(step):
            m.d.sync += s.eq(s + 1)
            advance_nested(m, [(x, w - 1), (y, h - 1), (g, None)])
            with m.If(s == self.depth_used - 1):
                m.d.sync += running.eq(0)
        with m.If(self.start):
            m.d.sync += [running.eq(1), s.eq(0), g.eq(0), y.eq(0), x.eq(0)]
        m.d.comb += self.rd_addr.eq(s)

        valid_b, g_b, y_b, x_b, s_b = delayed(m, {"valid": step, "g": g, "y": y, "x": x, "s": s}, "b")
        # With dual-port banks (interval 1) the read data and the bias are registered once more
        # before the arithmetic (stage c): the bank's clock-to-out and routing get a cycle of
        # their own. With single-port banks (interval 2) the next read follows the write at once,
        # so the arithmetic works on the read data directly (stage b).
        staged = self.interval == 1
        if staged:
            valid_c, g_c, y_c, x_c, s_c = delayed(
                m, {"valid": valid_b, "g": g_b, "y": y_b, "x": x_b, "s": s_b}, "c")
        else:
            valid_c, g_c, y_c, x_c, s_c = valid_b, g_b, y_b, x_b, s_b

        # With dual-port banks ``busy`` lasts one cycle more (``settle``): the spike buffer
        # registers its pushes, so the sweep's last word is ready to replay one cycle later.
        settle = delayed(m, {"valid": valid_c}, "d")[0] if staged else 0

        theta = self.threshold
        steps = self.binary_steps
        if steps:
            top_level = theta << (steps - 1)
            level = Signal(unsigned(bits_for(top_level)))
            shift = self.shift if steps > 1 else 0
            first = Signal()
            # registered: the threshold's shifter is off the compare's path (shift holds from S+1)
            m.d.sync += [level.eq(Const(theta, bits_for(theta)) << shift), first.eq(shift == steps - 1)]
        else:
            top_level = level = theta
        wide = signed(max(self.membrane_width, self.current_width or 0, self.bias_width,
                          signed_bits_for(top_level)) + 3)
        mask = []
        for lane in range(lanes):
            groups = max(0, -(-(c_out - lane) // lanes))
            if groups == 0:
                mask.append(0)
                continue
            if self.bias_per_neuron:     # graph layers: a bias per neuron, by address s
                init = [self.bias[(gg * lanes + lane) * h * w + p] for gg in range(groups) for p in range(h * w)]
            else:
                init = [self.bias[gg * lanes + lane] for gg in range(groups)]
            rom = Memory(shape=signed(self.bias_width), depth=rom_depth(len(init)), init=init)
            m.submodules[f"bias{lane}"] = rom
            bp = rom.read_port(domain="comb")
            m.d.comb += bp.addr.eq(s_b if len(init) > groups else g_b)
            v, bias = self.v_data[lane], bp.data
            current = self.i_data[lane] if self.current_width is not None else 0
            if staged:
                v_c = Signal.like(self.v_data[lane], name=f"v_c{lane}")
                bias_c = Signal.like(bp.data, name=f"bias_c{lane}")
                m.d.sync += [v_c.eq(v), bias_c.eq(bias)]
                v, bias = v_c, bias_c
                if self.current_width is not None:
                    i_c = Signal.like(self.i_data[lane], name=f"i_c{lane}")
                    m.d.sync += i_c.eq(current)
                    current = i_c
            total = Signal(wide, name=f"total{lane}")
            if steps:
                m.d.comb += total.eq(v + Mux(first, current + bias, 0))
            else:
                m.d.comb += total.eq(v + current + bias + self.charge)
            fired = Signal(name=f"fired{lane}")
            m.d.comb += fired.eq((total >= level) & (g_c < groups))
            m.d.comb += self.wr_data[lane].eq(total - Mux(fired, level, 0))
            mask.append(fired)
        word = self.spikes.payload
        m.d.comb += [
            self.wr_addr.eq(s_c),
            self.wr_en.eq(valid_c),
            word.group.eq(g_c), word.y.eq(y_c), word.x.eq(x_c), word.mask.eq(Cat(*mask)),
            self.spikes.valid.eq(valid_c & (word.mask != 0)),
            self.neuron.eq(g_c * (lanes * h * w) + y_c * w + x_c),
            self.busy.eq(running | valid_b | valid_c | settle),
        ]
        return m
