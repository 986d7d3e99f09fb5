"""Spike trace: every spike of every spiking layer, one word per sweep cycle that fired."""
from __future__ import annotations

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data, stream, wiring

from .checks import check_list, check_stream, check_type
from .fire import FireSweep
from .plan import HardwarePlan, bits_for


def trace_layout(plan: HardwarePlan) -> data.StructLayout:
    """Payload of the trace stream: one word per sweep cycle with spikes. ``layer`` is 1-based,
    ``t`` in 1..T, ``neuron`` the channel-major index of lane 0's neuron, ``mask`` bit l set if
    the neuron ``neuron + l * H * W`` of that layer fired."""
    return data.StructLayout({
        "layer": bits_for(len(plan.layers) - 1), "t": bits_for(plan.timesteps),
        "neuron": bits_for(max(layer.neurons for layer in plan.spiking) - 1), "mask": plan.lanes})


class SpikeTrace:
    """Copies the fire sweeps' spike words onto the trace stream (at most one sweep runs at a time).

    Members
    -------
    trace : stream.Interface
        The trace stream it drives (payload :func:`trace_layout`, always ready: the sink takes a word
        every cycle).

    Latency and throughput: combinational: a sweep's spike word is on the trace in the cycle it is
    written (one word per cycle).

    Flattened (``add_to`` adds statements to the parent module, no module of its own), so the
    design's Verilog is the same as before the top was split into components.

    Parameters (keyword-only)
    ----------
    sweeps : list of FireSweep (or other components with ``spikes`` and ``neuron``)
        The spiking layers' sweeps, layer 1 first (graph designs: then the max-pool units).
    t : Value
        The time step 1..T of the running sweep.
    trace : stream.Interface
        The design's trace stream.
    """

    def __init__(self, *, sweeps: list[FireSweep], t: Value, trace: stream.Interface):
        owner = "SpikeTrace"
        check_list(owner, "sweeps", sweeps, wiring.Component)
        check_type(owner, "t", t, Value)
        check_stream(owner, "trace", trace)
        self.sweeps = sweeps
        self.t = t
        self.trace = trace
        lanes = Value.cast(trace.payload.mask).shape().width
        self.neuron_any = Signal.like(trace.payload.neuron, name="neuron_any")
        self.mask_any = Signal(lanes, name="mask_any")
        self.valid_any = Signal(name="valid_any")

    def add_to(self, m: Module) -> None:
        """Add the multiplexer from the sweeps to the trace stream to ``m``."""
        payload = self.trace.payload
        for idx, fire in enumerate(self.sweeps):
            with m.If(fire.spikes.valid):
                m.d.comb += [self.valid_any.eq(1), self.neuron_any.eq(fire.neuron),
                             self.mask_any.eq(fire.spikes.payload.mask), payload.layer.eq(idx + 1)]
        m.d.comb += [self.trace.valid.eq(self.valid_any), payload.t.eq(self.t),
                     payload.neuron.eq(self.neuron_any), payload.mask.eq(self.mask_any)]
