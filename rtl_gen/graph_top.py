"""The top level of a graph network (docs/graph_hardware.md): layers with several edges, max-pool nodes."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ecc_hw.graph.network import INPUT, LAYER, MAX_POOL, Source
from ecc_hw.variants import TreMode

from .banks import BankMux, MembraneBanks
from .controller import StepCounter
from .engine import IntegrationEngine
from .fire import spike_word_layout
from .fire_stage import FireStage
from .graph_controller import GraphController, Replay, SourcePhases
from .graph_plan import EdgePlan, GraphPlan, PoolPlan, pool_overlaps
from .input_feed import InputFeed, pixel_shape
from .plan import bits_for
from .readout import Readout, result_layout
from .spike_buffer import SpikeBuffer
from .spram import SpramStackUnit
from .trace import SpikeTrace


POOL_INLET_DEPTH = 3   # words of the FIFO before each max-pool unit (its inner FIFO: 2, a 1-bit address)


def source_event_layout(shape) -> data.StructLayout:
    """A spike of a (C, H, W) source as its consumers' walkers (and max-pool units) take it."""
    c, h, w = shape
    return data.StructLayout({"c": bits_for(c - 1), "y": bits_for(h - 1), "x": bits_for(w - 1),
                              "value": unsigned(1)})


def graph_trace_layout(plan: GraphPlan) -> data.StructLayout:
    """Payload of the trace stream: ``layer`` numbers the spiking layers 1..N-1, then the max-pool nodes
    N..N+P-1 (``GraphPlan.trace_sources``); ``t``, ``neuron`` (lane 0's neuron, channel-major) and ``mask`` as
    for chains (``rtl_gen.trace.trace_layout``)."""
    sizes = [layer.layer.neurons for layer in plan.spiking] + [pool.neurons for pool in plan.pools]
    return data.StructLayout({"layer": bits_for(len(sizes)), "t": bits_for(plan.timesteps),
                              "neuron": bits_for(max(sizes) - 1), "mask": plan.lanes})


class EccGraphSnn(wiring.Component):
    """The ECC-SNN accelerator for a graph network: P lanes, event-driven integration over every edge.

    Members
    -------
    pixels : In(stream.Signature(pixel shape))
        The image x_q channel-major (c, y, x) whatever the model's layout (NHWC, (N, L, C) and (N, F)
        inputs are sent in the channel-major order of their (C, H, W) map), ``input_bits`` wide.
    result : Out(stream.Signature(result_layout))
        The output membranes V_N in neuron order, then the class word (``rtl_gen.readout``).
    trace : Out(stream.Signature(graph_trace_layout, always_ready=True)), only with ``trace=True``
        Every spike of every spiking layer and max-pool node.

    Schedule of one image: clear (the deepest memory's words), load (each pixel through every input edge
    at once, into the current banks of the layers that read the input), then for t = 1..T, for each
    source of the schedule (spiking layers in order, each max-pool node right after its layer): a
    spiking layer's fire sweep, its spikes replayed
    into each consumer in turn (its edges by layer, then the max-pool nodes over it; the first edge takes
    them while the sweep runs), and a max-pool node's spikes, made during its pass, replayed likewise; then
    the readout. ``ecc_hw.graph.cycle_model`` gives the exact cycle count. With ``plan.spram`` (``memory=
    "spram"``) the membrane, current and layer spike-buffer banks live in SB_SPRAM256KA stacks
    (``rtl_gen.graph_spram``): every walker and sweep reads a bank in one cycle and writes it in the next,
    and a layer's first edge integrates after the sweep instead of during it
    (``ecc_hw.graph.spram_cycle_model``).

    Built from the chain's components: per edge an :class:`~rtl_gen.engine.IntegrationEngine` (submodules
    ``walker<n>e<k>``, ``lane<n>e<k>_<lane>``) into its layer's :class:`~rtl_gen.banks.MembraneBanks`; per
    spiking layer a :class:`~rtl_gen.fire_stage.FireStage` (buffer ``spikes<n>``, replayable); per max-pool
    node a :class:`~rtl_gen.max_pool_unit.MaxPoolUnit` with its :class:`~rtl_gen.spike_buffer.SpikeBuffer`
    (``pool<p>``, ``pool_spikes<p>``); :class:`~rtl_gen.graph_controller.GraphController`.
    """

    def __init__(self, plan: GraphPlan, trace: bool = False):
        self.plan = plan
        self.with_trace = bool(trace)
        members = {"pixels": In(stream.Signature(pixel_shape(plan))),
                   "result": Out(stream.Signature(result_layout(plan.output.layer)))}
        if trace:
            members["trace"] = Out(stream.Signature(graph_trace_layout(plan), always_ready=True))
        super().__init__(members)

    @property
    def input_name(self) -> str:
        """The input stream's member."""
        return "pixels"

    def _engine(self, edge: EdgePlan, width: int, value_shape, shift) -> IntegrationEngine:
        """An edge's walker and lanes; binary coding: a spike of step t adds its weight << (T - t)."""
        plan = self.plan
        max_shift = plan.timesteps - 1 if shift is not None and edge.source.kind != INPUT else 0
        return IntegrationEngine(target=edge.target, value_shape=value_shape, weight_bits=plan.weight_bits,
                                 width=width, lanes=plan.lanes, interval=plan.issue_interval, max_shift=max_shift,
                                 shift=shift if max_shift else None, name=edge.name)

    def elaborate(self, platform):
        m = Module()
        plan = self.plan
        lanes, T = plan.lanes, plan.timesteps
        step = StepCounter(timesteps=T, binary=plan.binary)
        pixel = self.pixels.payload.shape()
        state_stack = spike_stack = None
        if plan.spram is not None:
            m.submodules.spram_state = state_stack = SpramStackUnit(plan.spram.state)
            m.submodules.spram_spikes = spike_stack = SpramStackUnit(plan.spram.spikes)

        engines: dict[str, IntegrationEngine] = {}
        layer_banks, current_banks = {}, {}
        for layer in plan.layers:
            lp = layer.layer
            for edge in layer.edges:
                from_input = edge.source.kind == INPUT
                engine = self._engine(edge, plan.current_width if from_input else lp.membrane_width,
                                      pixel if from_input else unsigned(1), step.shift)
                engine.add_to(m)
                engines[edge.name] = engine
            layer_banks[layer.number] = MembraneBanks(target=lp.target, width=lp.membrane_width, lanes=lanes,
                                                      stack=state_stack)
            layer_banks[layer.number].add_to(m)
            if layer.reads_input:
                current_banks[layer.number] = MembraneBanks(target=lp.target, width=plan.current_width, lanes=lanes,
                                                            current=True, stack=state_stack)
                current_banks[layer.number].add_to(m)

        stages = {}
        for layer in plan.spiking:
            lp = layer.layer
            stage = FireStage(layer=lp, lanes=lanes, timesteps=T, binary=plan.binary, tre_mode=plan.tre_mode,
                              interval=plan.issue_interval,
                              current_width=plan.current_width if layer.reads_input else None,
                              walker=None, shift=step.shift, spike_stack=spike_stack,
                              event_layout=source_event_layout(lp.target.out_shape), rewind=True,
                              buffer_name=f"spikes{layer.number}", spike_region=f"layer{layer.number}_spike_buffer")
            stage.add_to(m)
            stages[layer.number] = stage

        pools, pool_buffers = {}, {}
        clear_addr_bits = bits_for(plan.clear_depth - 1)
        for pool in plan.pools:
            from .max_pool_unit import MaxPoolUnit

            node = pool.node
            unit = MaxPoolUnit(input_shape=node.input_shape, output_shape=node.output_shape, kernel=node.kernel,
                               stride=node.stride, padding=node.padding, dilation=node.dilation, lanes=lanes,
                               timesteps=T, clear_bits=clear_addr_bits, binary=plan.binary)
            if plan.binary:
                m.d.comb += unit.t.eq(step.t)
            buffer = SpikeBuffer(spike_word_layout(pool.groups, *node.output_shape[1:], lanes), pool.neurons, lanes,
                                 source_event_layout(node.output_shape), rewind=True)
            # the source's spikes reach the unit through a two-word FIFO: registers between the source buffer's
            # lane decode and the unit's address arithmetic (timing), one event per cycle through
            inlet = SyncFIFOBuffered(width=Shape.cast(unit.events.payload.shape()).width, depth=POOL_INLET_DEPTH)
            m.submodules[f"pool{pool.number}"] = unit
            m.submodules[f"pool_inlet{pool.number}"] = inlet
            m.submodules[f"pool_spikes{pool.number}"] = buffer
            m.d.comb += [buffer.push.valid.eq(unit.spikes.valid), buffer.push.payload.eq(unit.spikes.payload),
                         unit.events.valid.eq(inlet.r_rdy), unit.events.payload.eq(inlet.r_data),
                         inlet.r_en.eq(unit.events.ready)]
            pools[pool.number], pool_buffers[pool.number] = (unit, inlet), buffer

        # each source's buffer, routed to its consumers one phase at a time
        replays_of = {}
        for source in plan.schedule:
            buffer = stages[source.index].buffer if source.kind == LAYER else pool_buffers[source.index]
            replays = []
            for k, consumer in enumerate(plan.consumers(source)):
                select = Signal(name=f"select_{source.kind}{source.index}_{k}")
                if isinstance(consumer, EdgePlan):
                    sink = engines[consumer.name]
                    name, events, busy, clear = consumer.name, sink.walker.events, sink.busy, None
                else:
                    unit, inlet = pools[consumer.number]
                    name, events, busy = f"pool{consumer.number}", inlet.w_stream, unit.busy | (inlet.level != 0)
                    clear = pool_buffers[consumer.number].clear
                m.d.comb += [events.valid.eq(buffer.events.valid & select), events.payload.eq(buffer.events.payload)]
                with m.If(select):
                    m.d.comb += buffer.events.ready.eq(events.ready)
                replays.append(Replay(name, buffer, select, busy, rewind=k > 0, clear=clear))
            replays_of[source] = replays
        sources = []
        for source in plan.schedule:
            is_layer = source.kind == LAYER
            replays, consumers = replays_of[source], plan.consumers(source)
            for replay, consumer in zip(replays, consumers):    # a pool's first consumer edge runs in its pass
                if isinstance(consumer, PoolPlan) and pool_overlaps(plan, consumer):
                    replay.alongside = replays_of[Source(MAX_POOL, consumer.number)][0]
            # a layer's first edge takes its spikes during the sweep, except with SPRAM: the sweep and the
            # integration would need two addresses in the state stack (and in the spike stack) at once
            overlap = bool(replays) and isinstance(consumers[0], EdgePlan) and (plan.spram is None or not is_layer)
            label = f"{'L' if is_layer else 'P'}{source.index}"
            sources.append(SourcePhases(label, stages[source.index] if is_layer else None, overlap, replays))

        input_engines = {edge.layer: engines[edge.name] for edge in plan.input_edges}
        feed = InputFeed(source=self.pixels, walkers=[engine.walker for engine in input_engines.values()],
                         input_shape=plan.input_shape, events=False)
        busy = [engine.busy for engine in input_engines.values()]
        load_busy = busy[0] if len(busy) == 1 else Cat(busy).any()     # one input edge: the same Verilog as before
        output = plan.output
        readout = Readout(layer=output.layer, lanes=lanes, bias_scale=1 if plan.binary else T,
                          banks=layer_banks[output.number],
                          result=self.result)
        controller = GraphController(step=step, clear_depth=plan.clear_depth, tre_mode=plan.tre_mode,
                                     binary=plan.binary, load_busy=load_busy, sources=sources,
                                     stages=list(stages.values()), feed=feed, readout=readout)
        for unit, _ in pools.values():
            m.d.comb += [unit.clear_en.eq(controller.clearing), unit.clear_addr.eq(controller.clear_addr)]

        for layer in plan.layers:
            lp = layer.layer
            init = lp.tre_charge if lp.spiking and plan.tre_mode == TreMode.INITIAL else 0
            sweep = stages[layer.number].sweep if lp.spiking else None
            is_output = layer is output
            layer_engines = [engines[edge.name] for edge in layer.edges if edge.source.kind != INPUT]
            if layer.reads_input:
                BankMux(banks=current_banks[layer.number], clear_value=0, clearing=controller.clearing,
                        clear_addr=controller.clear_addr, engine=input_engines[layer.number], sweep=sweep).add_to(m)
            BankMux(banks=layer_banks[layer.number], clear_value=init, clearing=controller.clearing,
                    clear_addr=controller.clear_addr, engines=layer_engines, sweep=sweep,
                    read_addr=readout.read_addr if is_output else None,
                    reading=readout.reading if is_output else None).add_to(m)

        feed.add_to(m)
        readout.add_to(m)
        controller.add_to(m)
        if self.with_trace:
            emitters = [stages[layer.number].sweep for layer in plan.spiking] + [pools[p.number][0] for p in plan.pools]
            SpikeTrace(sweeps=emitters, t=step.t, trace=self.trace).add_to(m)
        return m
