"""Fire stage: a spiking layer's fire sweep, the spike buffer after it and its TRE charge register."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring

from ecc_hw.variants import TreMode

from .checks import check_bool, check_choice, check_int, check_type
from .fire import FireSweep
from .plan import LayerPlan, bits_for
from .spike_buffer import SpikeBuffer
from .spram import SpramStackUnit
from .walker import FanOutWalker

TRE_MODES = TreMode.values()


class FireStage:
    """Fires spiking layer n and hands its spikes to layer n+1's walker.

    A :class:`~rtl_gen.fire.FireSweep` (submodule ``fire<n>``) pushes its spike words into a
    :class:`~rtl_gen.spike_buffer.SpikeBuffer` (submodule ``spikes<n+1>``, its words in the spike stack
    with SPRAM banks), which replays them one spike per handshake into the next layer's walker. With rate
    coding the stage also holds the TRE charge of the step (``charge<n>``) and, for ``tre_mode="spread"``,
    the counter of the remainder's spread (``tre<n>``): a step's charge is q + 1 when the counter wraps
    (q, r = divmod(TRE charge, T): r of the T steps get the extra 1), else q.

    Members
    -------
    sweep : FireSweep
    buffer : SpikeBuffer
    charge : Signal or None
        The step's TRE charge into the sweep (rate coding only).
    counter : Signal or None
        The spread counter 0..T-1 (rate coding only).

    Latency and throughput: those of the sweep and the buffer (a word pushed in cycle k is replayed from
    k + ``SpikeBuffer.REPLAY_LATENCY`` with dual-port banks); :meth:`start` sets the charge in the sweep's
    start cycle, so the sweep sees it from its first read.

    Flattened (``add_to`` adds the sweep and the buffer to the parent module and connects them there),
    so the design's Verilog keeps the module hierarchy it had before the top was split.

    Parameters (keyword-only)
    ----------
    layer : LayerPlan
        The spiking layer n.
    lanes : int, at least 1
    timesteps : int, at least 1
    binary : bool
        Binary coding (radix): the sweep fires bit T - shift, no TRE.
    tre_mode : "spread" or "initial"
    interval : 1 or 2
        Cycles between two accesses of one bank (dual-port or single-port banks).
    current_width : int or None
        Layer 1's constant current bits (image input); ``None``: the sweep adds no current.
    walker : FanOutWalker or None
        Layer n+1's walker, fed by the buffer; ``None`` (graph networks): the buffer's ``events`` are
        left to the caller, which routes them to each consumer in turn.
    shift : Value or None
        T - t, binary coding with T > 1 only.
    spike_stack : SpramStackUnit or None
        The SPRAM stack holding the buffer's words; ``None``: a memory of the buffer's own.
    event_layout : StructLayout or None
        The buffer's event payload when there is no ``walker``.
    rewind : bool
        The buffer can replay its words again (``SpikeBuffer.rewind``), for a source with several consumers.
    buffer_name : str or None
        The buffer's submodule name (default ``spikes<n+1>``).
    spike_region : str or None
        The buffer's region (and bank) in ``spike_stack`` (default ``layer<n+1>_spike_buffer``, a chain's).
    """

    def __init__(self, *, layer: LayerPlan, lanes: int, timesteps: int, binary: bool, tre_mode: str,
                 interval: int, current_width: int | None, walker: FanOutWalker | None,
                 shift: Value | None = None, spike_stack: SpramStackUnit | None = None, event_layout=None,
                 rewind: bool = False, buffer_name: str | None = None, spike_region: str | None = None):
        owner = "FireStage"
        check_type(owner, "layer", layer, LayerPlan)
        if not layer.spiking:
            raise ValueError(f"{owner}: layer {layer.index + 1} does not spike")
        check_int(owner, "lanes", lanes, 1)
        check_int(owner, "timesteps", timesteps, 1)
        check_bool(owner, "binary", binary)
        check_choice(owner, "tre_mode", tre_mode, TRE_MODES)
        check_type(owner, "walker", walker, FanOutWalker, optional=True)
        if (walker is None) == (event_layout is None):
            raise ValueError(f"{owner}: give exactly one of walker and event_layout")
        check_type(owner, "shift", shift, Value, optional=True)
        if (shift is not None) != (binary and timesteps > 1):
            raise ValueError(f"{owner}: shift must be given exactly with binary coding and timesteps > 1")
        check_type(owner, "spike_stack", spike_stack, SpramStackUnit, optional=True)
        self.number = layer.index + 1
        self.layer = layer
        self.timesteps = timesteps
        self.spread = tre_mode == TreMode.SPREAD and not binary
        self.shift = shift
        self.walker = walker
        self.spike_stack = spike_stack
        _, height, width = layer.target.out_shape
        self.sweep = FireSweep(channels=layer.target.out_shape[0], height=height, width=width, lanes=lanes,
                               threshold=layer.threshold, bias=layer.bias, membrane_width=layer.membrane_width,
                               tre_quotient=layer.tre_quotient, current_width=current_width,
                               binary_steps=timesteps if binary else 0, interval=interval)
        self.buffer_name = buffer_name or f"spikes{self.number + 1}"
        self.spike_region = spike_region or f"layer{self.number + 1}_spike_buffer"
        self.buffer = SpikeBuffer(self.sweep.spike_layout, layer.target.depth_used, lanes,
                                  walker.events.payload.shape() if walker is not None else event_layout,
                                  single_port=spike_stack is not None, rewind=rewind)
        self.charge = self.counter = None
        if not binary:
            self.charge = Signal(self.sweep.charge_shape, name=f"charge{self.number}")
            self.counter = Signal(bits_for(timesteps - 1), name=f"tre{self.number}")

    def add_to(self, m: Module) -> None:
        """Add the sweep and the buffer to ``m`` and connect sweep, buffer, spike stack and walker."""
        fire, buf = self.sweep, self.buffer
        m.submodules[f"fire{self.number}"] = fire
        if self.shift is not None:
            m.d.comb += fire.shift.eq(self.shift)
        m.submodules[self.buffer_name] = buf
        if self.spike_stack is not None:
            name = self.spike_region
            rp, wp = self.spike_stack.bank(name, name, 0, unsigned(buf.wr_data.as_value().shape().width))
            m.d.comb += [wp.addr.eq(buf.wr_addr), wp.data.eq(buf.wr_data), wp.en.eq(buf.wr_en),
                         rp.addr.eq(buf.rd_addr), rp.req.eq(buf.rd_req), buf.rd_data.eq(rp.data)]
        m.d.comb += [buf.push.valid.eq(fire.spikes.valid), buf.push.payload.eq(fire.spikes.payload)]
        if self.walker is not None:
            wiring.connect(m, buf.events, self.walker.events)
        if self.charge is not None:
            m.d.comb += fire.charge.eq(self.charge)

    def start(self, m: Module) -> None:
        """Statements (in the current branch of the controller) that start the sweep next cycle: the
        buffer is emptied and, with the spread TRE, the step's charge and the counter advance."""
        m.d.comb += [self.sweep.start.eq(1), self.buffer.clear.eq(1)]
        if self.spread:
            T = self.timesteps
            q, r = self.layer.tre_quotient, self.layer.tre_remainder
            c = self.counter
            wrap = c + r >= T
            m.d.sync += [self.charge.eq(q + wrap), c.eq(Mux(wrap, c + r - T, c + r))]
