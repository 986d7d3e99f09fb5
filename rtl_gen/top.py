"""The top level: the whole converted network on chip (docs/arithmetic.md section 3; radix files: ``ecc_hw.radix``),
built from a plan."""
from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .counters import advance_nested
from .event_input import count_shape, event_word_layout
from .fire import FireSweep, spike_word_layout
from .lane import SynapseLane
from .plan import HardwarePlan, bits_for, pow2_depth, rom_depth
from .spike_buffer import SpikeBuffer
from .spram import SpramStackUnit
from .walker import FanOutWalker, update_layout


def pixel_shape(plan: HardwarePlan):
    """Shape of one input pixel x_q."""
    return signed(plan.input_bits) if plan.input_signed else unsigned(plan.input_bits)


def result_layout(plan: HardwarePlan) -> data.StructLayout:
    """Payload of the result stream: output neuron ``index`` and its final membrane ``value``;
    the last word of an image has ``is_class`` = 1 and carries the prediction (and its membrane)."""
    out = plan.layers[-1]
    return data.StructLayout({"index": bits_for(out.neurons - 1), "value": signed(out.membrane_width),
                              "is_class": 1})


def trace_layout(plan: HardwarePlan) -> data.StructLayout:
    """Payload of the trace stream: one word per sweep cycle with spikes. ``layer`` is 1-based,
    ``t`` in 1..T, ``neuron`` the channel-major index of lane 0's neuron, ``mask`` bit l set if
    the neuron ``neuron + l * H * W`` of that layer fired."""
    return data.StructLayout({
        "layer": bits_for(len(plan.layers) - 1), "t": bits_for(plan.timesteps),
        "neuron": bits_for(max(layer.neurons for layer in plan.spiking) - 1), "mask": plan.lanes})


class _Banks:
    """P membrane banks of one layer (only lanes that own a channel): one write port and one
    registered read port each (not transparent: the lanes forward their own writes); or, with
    ``stack``, the lanes' fields of ``region`` in an SPRAM stack (``rtl_gen.spram``: single-ported,
    the users read and write in different cycles), whose clear starts at the region's offset."""

    def __init__(self, m, name, layer_target, lanes, width, stack=None, region=None, bank=None):
        self.ports = []
        self.clear_offset = 0
        c_out = layer_target.out_shape[0]
        depth = pow2_depth(layer_target.depth_used)
        for lane in range(min(lanes, c_out)):
            if stack is not None:
                self.ports.append(stack.bank(region, bank, lane, signed(width)))
                self.clear_offset = stack.stack.region(region).offset
                continue
            mem = Memory(shape=signed(width), depth=depth, init=[])
            m.submodules[f"{name}{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            self.ports.append((rp, wp))


class EccSnn(wiring.Component):
    """The ECC-SNN accelerator: P lanes, event-driven integration, pipelined fire sweeps.

    Members
    -------
    pixels : In(stream.Signature(pixel shape)), image input
        The image x_q, channel-major (c, y, x), ``input_bits`` wide (two's complement if signed).
    events : In(stream.Signature(event_word_layout)), event input (``plan.events``), not ``pixels``
        Input events (c, y, x, count) frame by frame, each frame closed by a ``frame_end`` word
        (``rtl_gen.event_input``).
    result : Out(stream.Signature(result_layout))
        The final output membranes V_N in neuron order, then one word with ``is_class`` = 1
        holding the prediction (argmax, lowest index on ties).
    trace : Out(stream.Signature(trace_layout, always_ready=True)), only with ``trace=True``
        Every spike of every spiking layer (see :func:`trace_layout`); the sink must take a word
        every cycle.

    Schedule of one image (every phase pipelined, one update or neuron per lane per cycle):
    clear (the deepest bank's used words), load (each pixel costs max(1, its fan-out cycles);
    zero pixels cost one cycle), then for t = 1..T and n = 1..N-1: fire sweep of layer n and
    integration of its spikes into layer n+1 (with dual-port banks the integration starts with the
    sweep's first spike word and may outlast it; single-port banks: after the sweep); then the
    output words (three cycles each) and the class word. Event input (``plan.events``): no current
    RAM and no separate load; for t = 1..T the events of frame t walk into layer 1's membranes like spikes into later layers (each event costs
    max(1, its fan-out cycles), its multiplicity scales the weight; the frame's marker costs one
    cycle), then, once the walk has drained, the sweeps and integrations of step t as above (layer
    1's sweep adds its bias and TRE charge, no current); one cycle passes from the last integration
    of step t to frame t+1's first event. Binary coding (radix, ``plan.binary``): the same phases
    with the loops swapped, for n = 1..N-1 and t = 1..T (layer n+1 fires only after layer n delivered all T bits), step t's
    spikes integrated as weight << (T - t) (Horner's rule) and the output bias added once.
    ``ecc_hw.cycle_model`` gives the exact cycle count; throughput is one image per that many
    cycles, latency the same (no two images overlap). With ``plan.memory == "spram"`` the
    membrane, current and spike-buffer banks live in SB_SPRAM256KA stacks (``rtl_gen.spram``) and
    every walker and sweep reads a bank in one cycle and writes it in the next (half the rate).
    """

    def __init__(self, plan: HardwarePlan, trace: bool = False):
        self.plan = plan
        self.with_trace = bool(trace)
        members = {
            self.input_name: In(stream.Signature(event_word_layout(plan) if plan.events
                                                 else pixel_shape(plan))),
            "result": Out(stream.Signature(result_layout(plan))),
        }
        if trace:
            members["trace"] = Out(stream.Signature(trace_layout(plan), always_ready=True))
        super().__init__(members)

    @property
    def input_name(self) -> str:
        """The input stream's member: ``events`` with event input, else ``pixels``."""
        return "events" if self.plan.events else "pixels"

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        lanes = plan.lanes
        layers = plan.layers
        n_layers = len(layers)
        T = plan.timesteps
        binary = plan.binary
        events = plan.events
        source = getattr(self, self.input_name)
        t = Signal(bits_for(T), init=1)
        shift = None
        if binary and T > 1:
            # the weight of step t's spikes is 2^shift, shift = T - t: a register set with t
            shift = Signal(range(T), name="shift", init=T - 1)

        def set_t(value):
            """Statements: t (and shift) take ``value`` next cycle."""
            return [t.eq(value)] + ([shift.eq(T - value)] if shift is not None else [])
        interval = plan.issue_interval
        state_stack = spike_stack = None
        if plan.spram is not None:
            m.submodules.spram_state = state_stack = SpramStackUnit(plan.spram.state)
            m.submodules.spram_spikes = spike_stack = SpramStackUnit(plan.spram.spikes)

        # --- integration engines (layer 1: into the current RAM, or with events into its membranes;
        # others: into the membranes)
        walkers, lane_sets, target_banks = [], [], []
        for layer in layers:
            idx = layer.index
            value_shape = unsigned(1)
            if idx == 0:
                value_shape = count_shape(plan) if events else pixel_shape(plan)
            walker = FanOutWalker(layer.target, value_shape, interval)
            m.submodules[f"walker{idx + 1}"] = walker
            into_current = idx == 0 and not events
            width = plan.current_width if into_current else layer.membrane_width
            c_out = layer.target.out_shape[0]
            lane_units = []
            max_shift = T - 1 if binary and idx > 0 else 0   # 0 for T = 1 too
            for lane in range(min(lanes, c_out)):
                unit = SynapseLane(layer.target.weight_roms[lane], plan.weight_bits,
                                   update_layout(layer.target, value_shape), width,
                                   pow2_depth(layer.target.depth_used), lane, lanes, c_out, max_shift,
                                   registered_read=interval == 1)
                m.submodules[f"lane{idx + 1}_{lane}"] = unit
                if max_shift:
                    m.d.comb += unit.shift.eq(shift)
                m.d.comb += [unit.update.valid.eq(walker.updates.valid),
                             unit.update.payload.eq(walker.updates.payload)]
                lane_units.append(unit)
            walkers.append(walker)
            lane_sets.append(lane_units)
            name = "current" if into_current else f"membrane{idx + 1}_"
            bank = "layer1_current" if into_current else f"layer{idx + 1}_membrane"
            target_banks.append(_Banks(m, name, layer.target, lanes, width, state_stack, f"layer{idx + 1}",
                                       bank))
        membrane1 = target_banks[0] if events else _Banks(
            m, "membrane1_", layers[0].target, lanes, layers[0].membrane_width, state_stack, "layer1",
            "layer1_membrane")
        state_banks = [membrane1] + target_banks[1:]   # membranes of every layer

        # --- fire sweeps, spike buffers, TRE counters
        fires, buffers, charges, counters = [], [], [], []
        for layer in plan.spiking:
            idx = layer.index
            fire = FireSweep(layer, lanes, plan.current_width if idx == 0 and not events else None,
                             T if binary else 0, interval)
            m.submodules[f"fire{idx + 1}"] = fire
            if binary and T > 1:
                m.d.comb += fire.shift.eq(shift)
            buf = SpikeBuffer(spike_word_layout(layer, lanes), layer.target.depth_used, lanes,
                              walkers[idx + 1].events.payload.shape(), single_port=spike_stack is not None)
            m.submodules[f"spikes{idx + 2}"] = buf
            if spike_stack is not None:
                name = f"layer{idx + 2}_spike_buffer"
                rp, wp = spike_stack.bank(name, name, 0, unsigned(buf.wr_data.as_value().shape().width))
                m.d.comb += [wp.addr.eq(buf.wr_addr), wp.data.eq(buf.wr_data), wp.en.eq(buf.wr_en),
                             rp.addr.eq(buf.rd_addr), rp.req.eq(buf.rd_req), buf.rd_data.eq(rp.data)]
            m.d.comb += [buf.push.valid.eq(fire.spikes.valid), buf.push.payload.eq(fire.spikes.payload)]
            wiring.connect(m, buf.events, walkers[idx + 1].events)
            fires.append(fire)
            buffers.append(buf)
            if not binary:
                charge = Signal(fire.charge_shape, name=f"charge{idx + 1}")
                counter = Signal(bits_for(T - 1), name=f"tre{idx + 1}")
                m.d.comb += fire.charge.eq(charge)
                charges.append(charge)
                counters.append(counter)

        clearing = Signal()
        clear_addr = Signal(bits_for(plan.clear_depth - 1))
        reading = Signal()

        def engine_busy(idx):
            busy = walkers[idx].busy
            for unit in lane_sets[idx]:
                busy = busy | unit.busy
            return busy

        # --- bank port multiplexing (phases are exclusive)
        out_layer = layers[-1]
        out_hw = out_layer.target.out_hw
        read_addr = Signal(bits_for(out_layer.target.depth_used - 1))
        for idx, layer in enumerate(layers):
            depth_used = layer.target.depth_used
            init = 0
            if layer.spiking and plan.tre_mode == "initial":
                init = layer.tre_charge
            banks_here = [(target_banks[idx], lane_sets[idx], 0 if idx == 0 and not events else init)]
            if idx == 0 and not events:
                banks_here.append((membrane1, None, init))
            for banks, lane_units, init_value in banks_here:
                for lane, (rp, wp) in enumerate(banks.ports):
                    fire = fires[idx] if layer.spiking else None
                    is_state = banks is state_banks[idx]
                    unit = lane_units[lane] if lane_units is not None else None
                    if unit is not None:
                        m.d.comb += unit.rd_data.eq(rp.data)
                    # read address
                    rd = unit.rd_addr if unit is not None else 0
                    if fire is not None:
                        rd = Mux(fire.busy, fire.rd_addr, rd)
                        if is_state:
                            m.d.comb += fire.v_data[lane].eq(rp.data)
                        else:
                            m.d.comb += fire.i_data[lane].eq(rp.data)
                    if idx == n_layers - 1:
                        rd = Mux(reading, read_addr, rd)
                    m.d.comb += rp.addr.eq(rd)
                    if state_stack is not None:      # who needs the read selects the SPRAM address
                        req = fire.busy if fire is not None else 0
                        if unit is not None:
                            req = req | engine_busy(idx)
                        if idx == n_layers - 1:
                            req = req | reading
                        m.d.comb += rp.req.eq(req)
                    # write port
                    off = banks.clear_offset
                    with m.If(clearing):
                        m.d.comb += [wp.addr.eq(clear_addr - off if off else clear_addr),
                                     wp.data.eq(init_value),
                                     wp.en.eq((clear_addr >= off) & (clear_addr < off + depth_used) if off
                                              else clear_addr < depth_used)]
                    if fire is not None and is_state:
                        with m.Elif(fire.wr_en):
                            m.d.comb += [wp.addr.eq(fire.wr_addr), wp.data.eq(fire.wr_data[lane]),
                                         wp.en.eq(1)]
                    if unit is not None:
                        with m.Elif(unit.wr_en):
                            m.d.comb += [wp.addr.eq(unit.wr_addr), wp.data.eq(unit.wr_data),
                                         wp.en.eq(1)]

        # Controller state: codes from 1 (an all-zero code makes Yosys print `!state`, which
        # Verilator reports as WIDTHTRUNC).
        state_names = ["CLEAR", "LOAD", "LOAD_DRAIN"]
        for layer in plan.spiking:
            state_names += [f"FIRE{layer.index + 1}", f"INTEGRATE{layer.index + 2}"]
        state_names += ["READ", "LATCH", "SEND", "CLASS"]
        codes = {name: code + 1 for code, name in enumerate(state_names)}
        state = Signal(bits_for(len(state_names)), init=codes["CLEAR"])

        def goto(name):
            m.d.sync += state.eq(codes[name])

        def start_fire(idx):
            """Statements (in the current FSM branch) that start layer idx's sweep next cycle."""
            layer = layers[idx]
            m.d.comb += [fires[idx].start.eq(1), buffers[idx].clear.eq(1)]
            if plan.tre_mode == "spread" and not binary:
                q, r = layer.tre_quotient, layer.tre_remainder
                c = counters[idx]
                wrap = c + r >= T
                m.d.sync += [charges[idx].eq(q + wrap), c.eq(Mux(wrap, c + r - T, c + r))]
            goto(f"FIRE{idx + 1}")

        # --- input: pixels in channel-major order, or events, feed layer 1's walker
        c_in, h_in, w_in = plan.input_shape
        load_events = walkers[0].events
        pixel_counters = []
        if events:           # a frame_end word enters the walker as a no-op (count 0): one cycle
            word = source.payload
            m.d.comb += [load_events.payload.c.eq(word.c), load_events.payload.y.eq(word.y),
                         load_events.payload.x.eq(word.x),
                         load_events.payload.value.eq(Mux(word.frame_end, 0, word.count))]
            last_word = word.frame_end
        else:
            pc = Signal(bits_for(c_in - 1))
            py = Signal(bits_for(h_in - 1))
            px = Signal(bits_for(w_in - 1))
            pixel_counters = [pc, py, px]
            m.d.comb += [load_events.payload.c.eq(pc), load_events.payload.y.eq(py),
                         load_events.payload.x.eq(px), load_events.payload.value.eq(source.payload)]
            last_word = (pc == c_in - 1) & (py == h_in - 1) & (px == w_in - 1)

        # --- readout of the output layer
        out_lanes = len(target_banks[-1].ports)
        r_lane = Signal(bits_for(lanes - 1))
        r_group = Signal(bits_for(out_layer.target.groups - 1))
        r_pos = Signal(bits_for(out_hw - 1))
        r_index = Signal(bits_for(out_layer.neurons - 1))
        r_channel = Signal(bits_for(out_layer.target.out_shape[0] - 1))
        best = Signal(signed(out_layer.membrane_width))
        best_index = Signal.like(r_index)
        first = Signal()
        m.submodules.output_bias = tb_rom = Memory(
            shape=signed(out_layer.bias_width), depth=rom_depth(len(out_layer.bias)),
            init=[b if binary else T * b for b in out_layer.bias])   # rate coding adds the bias T times
        tb_port = tb_rom.read_port(domain="comb")
        m.d.comb += [tb_port.addr.eq(r_channel), read_addr.eq(r_group * out_hw + r_pos)]
        lane_data = Array([rp.data for rp, _ in target_banks[-1].ports]
                          + [0] * (lanes - out_lanes))
        # READ presents the address, LATCH registers the bank's read data plus the bias, SEND
        # compares and sends the registered value (the bank's clock-to-out gets a cycle of its own).
        out_value = Signal(signed(out_layer.membrane_width))

        def start_readout():
            m.d.sync += [r_lane.eq(0), r_group.eq(0), r_pos.eq(0), r_index.eq(0), r_channel.eq(0), first.eq(1)]
            goto("READ")

        with m.Switch(state):
            with m.Case(codes["CLEAR"]):
                m.d.comb += clearing.eq(1)
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == plan.clear_depth - 1):
                    m.d.sync += [clear_addr.eq(0), *set_t(1)] + [c.eq(0) for c in pixel_counters]
                    m.d.sync += [c.eq(0) for c in counters]
                    if plan.tre_mode == "initial":
                        m.d.sync += [c.eq(0) for c in charges]
                    goto("LOAD")
            with m.Case(codes["LOAD"]):
                m.d.comb += [load_events.valid.eq(source.valid), source.ready.eq(load_events.ready)]
                with m.If(source.valid & load_events.ready):
                    if not events:
                        advance_nested(m, [(px, w_in - 1), (py, h_in - 1), (pc, None)])
                    with m.If(last_word):
                        goto("LOAD_DRAIN")
            with m.Case(codes["LOAD_DRAIN"]):
                with m.If(~engine_busy(0)):
                    start_fire(0)
            for layer in plan.spiking:
                idx = layer.index
                with m.Case(codes[f"FIRE{idx + 1}"]):
                    if interval == 1:     # dual-port banks: layer n+1 integrates while layer n sweeps
                        m.d.comb += buffers[idx].enable.eq(1)
                    with m.If(~fires[idx].busy):
                        goto(f"INTEGRATE{idx + 2}")
                with m.Case(codes[f"INTEGRATE{idx + 2}"]):
                    m.d.comb += buffers[idx].enable.eq(1)
                    with m.If(~buffers[idx].pending & ~engine_busy(idx + 1)):
                        if binary:        # layer by layer: bits t = 1..T of layer n, then layer n+1
                            with m.If(t == T):
                                if idx + 1 < n_layers - 1:
                                    m.d.sync += set_t(1)
                                    start_fire(idx + 1)
                                else:
                                    start_readout()
                            with m.Else():
                                m.d.sync += set_t(t + 1)
                                start_fire(idx)
                        elif idx + 1 < n_layers - 1:
                            start_fire(idx + 1)
                        else:
                            with m.If(t == T):
                                start_readout()
                            with m.Else():
                                m.d.sync += set_t(t + 1)
                                if events:          # frame t + 1's events first
                                    goto("LOAD")
                                else:
                                    start_fire(0)
            with m.Case(codes["READ"]):
                m.d.comb += reading.eq(1)
                goto("LATCH")
            with m.Case(codes["LATCH"]):
                m.d.comb += reading.eq(1)
                m.d.sync += out_value.eq(lane_data[r_lane] + tb_port.data)
                goto("SEND")
            with m.Case(codes["SEND"]):
                m.d.comb += [reading.eq(1), self.result.valid.eq(1),
                             self.result.payload.index.eq(r_index),
                             self.result.payload.value.eq(out_value)]
                with m.If(self.result.ready):
                    with m.If(first | (out_value > best)):
                        m.d.sync += [best.eq(out_value), best_index.eq(r_index), first.eq(0)]
                    m.d.sync += r_index.eq(r_index + 1)
                    with m.If(r_pos == out_hw - 1):
                        m.d.sync += [r_pos.eq(0), r_channel.eq(r_channel + 1)]
                        with m.If(r_lane == lanes - 1):
                            m.d.sync += [r_lane.eq(0), r_group.eq(r_group + 1)]
                        with m.Else():
                            m.d.sync += r_lane.eq(r_lane + 1)
                    with m.Else():
                        m.d.sync += r_pos.eq(r_pos + 1)
                    with m.If(r_index == out_layer.neurons - 1):
                        goto("CLASS")
                    with m.Else():
                        goto("READ")
            with m.Case(codes["CLASS"]):
                m.d.comb += [self.result.valid.eq(1), self.result.payload.index.eq(best_index),
                             self.result.payload.value.eq(best), self.result.payload.is_class.eq(1)]
                with m.If(self.result.ready):
                    goto("CLEAR")

        if self.with_trace:
            neuron_any = Signal.like(self.trace.payload.neuron)
            mask_any = Signal(lanes)
            valid_any = Signal()
            for idx, fire in enumerate(fires):
                with m.If(fire.spikes.valid):
                    m.d.comb += [valid_any.eq(1), neuron_any.eq(fire.neuron),
                                 mask_any.eq(fire.spikes.payload.mask),
                                 self.trace.payload.layer.eq(idx + 1)]
            m.d.comb += [self.trace.valid.eq(valid_any), self.trace.payload.t.eq(t),
                         self.trace.payload.neuron.eq(neuron_any), self.trace.payload.mask.eq(mask_any)]
        return m
