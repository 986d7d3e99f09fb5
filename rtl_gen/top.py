"""The top level: the whole converted network on chip (docs/arithmetic.md section 3; radix files: ``ecc_hw.radix``),
built from a plan."""
from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ecc_hw.variants import TreMode

from .banks import BankMux, MembraneBanks
from .controller import Controller, StepCounter
from .engine import IntegrationEngine
from .event_input import count_shape, event_word_layout
from .fire_stage import FireStage
from .input_feed import InputFeed, pixel_shape
from .plan import HardwarePlan
from .readout import Readout, result_layout
from .spram import SpramStackUnit
from .trace import SpikeTrace, trace_layout


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
    RAM and no separate load; for t = 1..T the events of frame t walk into layer 1's membranes like
    spikes into later layers (each event costs max(1, its fan-out cycles), its multiplicity scales the
    weight; the frame's marker costs one cycle), then, once the walk has drained, the sweeps and
    integrations of step t as above (layer 1's sweep adds its bias and TRE charge, no current); one
    cycle passes from the last integration of step t to frame t+1's first event. Binary coding (radix,
    ``plan.binary``): the same phases with the loops swapped, for n = 1..N-1 and t = 1..T (layer n+1
    fires only after layer n delivered all T bits), step t's spikes integrated as weight << (T - t)
    (Horner's rule) and the output bias added once.
    ``ecc_hw.cycle_model`` gives the exact cycle count; throughput is one image per that many
    cycles, latency the same (no two images overlap). With ``plan.memory == "spram"`` the
    membrane, current and spike-buffer banks live in SB_SPRAM256KA stacks (``rtl_gen.spram``) and
    every walker and sweep reads a bank in one cycle and writes it in the next (half the rate).

    Built from components that add their logic to this module (flattened: the Verilog keeps one
    module per memory and unit below the top): per layer an :class:`~rtl_gen.engine.IntegrationEngine`
    (walker and lanes) and :class:`~rtl_gen.banks.MembraneBanks`; per spiking layer a
    :class:`~rtl_gen.fire_stage.FireStage` (sweep, spike buffer, TRE charge); the banks' ports through
    :class:`~rtl_gen.banks.BankMux`; :class:`~rtl_gen.input_feed.InputFeed`,
    :class:`~rtl_gen.readout.Readout`, the :class:`~rtl_gen.controller.Controller` and, with ``trace``,
    :class:`~rtl_gen.trace.SpikeTrace`.
    """

    def __init__(self, plan: HardwarePlan, trace: bool = False):
        self.plan = plan
        self.with_trace = bool(trace)
        members = {
            self.input_name: In(stream.Signature(event_word_layout(plan) if plan.events
                                                 else pixel_shape(plan))),
            "result": Out(stream.Signature(result_layout(plan.layers[-1]))),
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
        lanes, layers, T, binary, events = plan.lanes, plan.layers, plan.timesteps, plan.binary, plan.events
        interval = plan.issue_interval
        step = StepCounter(timesteps=T, binary=binary)
        state_stack = spike_stack = None
        if plan.spram is not None:
            m.submodules.spram_state = state_stack = SpramStackUnit(plan.spram.state)
            m.submodules.spram_spikes = spike_stack = SpramStackUnit(plan.spram.spikes)

        # integration engines (layer 1: into the current banks, or with events into its membranes;
        # others: into the membranes) and the banks they write
        engines, target_banks = [], []
        for layer in layers:
            idx = layer.index
            value_shape = unsigned(1)
            if idx == 0:
                value_shape = count_shape(plan) if events else pixel_shape(plan)
            into_current = idx == 0 and not events
            width = plan.current_width if into_current else layer.membrane_width
            max_shift = T - 1 if binary and idx > 0 else 0   # 0 for T = 1 too
            engine = IntegrationEngine(target=layer.target, value_shape=value_shape, weight_bits=plan.weight_bits,
                                       width=width, lanes=lanes, interval=interval, max_shift=max_shift,
                                       shift=step.shift if max_shift else None)
            engine.add_to(m)
            banks = MembraneBanks(target=layer.target, width=width, lanes=lanes, current=into_current,
                                  stack=state_stack)
            banks.add_to(m)
            engines.append(engine)
            target_banks.append(banks)
        membrane1 = target_banks[0]
        if not events:
            membrane1 = MembraneBanks(target=layers[0].target, width=layers[0].membrane_width, lanes=lanes,
                                      stack=state_stack)
            membrane1.add_to(m)

        # fire sweeps, spike buffers, TRE charges
        stages = []
        for layer in plan.spiking:
            idx = layer.index
            stage = FireStage(layer=layer, lanes=lanes, timesteps=T, binary=binary, tre_mode=plan.tre_mode,
                              interval=interval, current_width=plan.current_width if idx == 0 and not events else None,
                              walker=engines[idx + 1].walker, shift=step.shift, spike_stack=spike_stack)
            stage.add_to(m)
            stages.append(stage)

        feed = InputFeed(source=getattr(self, self.input_name), walkers=[engines[0].walker],
                         input_shape=plan.input_shape, events=events)
        readout = Readout(layer=layers[-1], lanes=lanes, bias_scale=1 if binary else T, banks=target_banks[-1],
                          result=self.result)
        controller = Controller(step=step, clear_depth=plan.clear_depth, tre_mode=plan.tre_mode, binary=binary,
                                events=events, interval=interval, engines=engines, stages=stages, feed=feed,
                                readout=readout)

        # bank port multiplexing (the phases are exclusive)
        for idx, layer in enumerate(layers):
            init = layer.tre_charge if layer.spiking and plan.tre_mode == TreMode.INITIAL else 0
            sweep = stages[idx].sweep if layer.spiking else None
            output = idx == len(layers) - 1
            muxes = [BankMux(banks=target_banks[idx], clear_value=0 if idx == 0 and not events else init,
                             clearing=controller.clearing, clear_addr=controller.clear_addr, engine=engines[idx],
                             sweep=sweep, read_addr=readout.read_addr if output else None,
                             reading=readout.reading if output else None)]
            if idx == 0 and not events:
                muxes.append(BankMux(banks=membrane1, clear_value=init, clearing=controller.clearing,
                                     clear_addr=controller.clear_addr, sweep=sweep))
            for mux in muxes:
                mux.add_to(m)

        feed.add_to(m)
        readout.add_to(m)
        controller.add_to(m)
        if self.with_trace:
            SpikeTrace(sweeps=[stage.sweep for stage in stages], t=step.t, trace=self.trace).add_to(m)
        return m
