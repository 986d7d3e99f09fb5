"""Integration engine: the fan-out walker and the synapse lanes of one layer."""
from __future__ import annotations

from amaranth.hdl import Module, Shape, Value

from .checks import check_choice, check_int, check_type
from .lane import SynapseLane
from .plan import TargetPlan, pow2_depth
from .walker import FanOutWalker, update_layout


class IntegrationEngine:
    """Walks each input event's fan-out and adds the weights into the layer's banks, P lanes at once.

    One :class:`~rtl_gen.walker.FanOutWalker` (submodule ``walker<n>``) broadcasts its update commands
    to one :class:`~rtl_gen.lane.SynapseLane` per lane that owns a channel (submodules
    ``lane<n>_<lane>``); the lanes' bank ports are left to :class:`~rtl_gen.banks.BankMux`.

    Members
    -------
    walker : FanOutWalker
        Its ``events`` stream is the engine's input (pixels, input events or layer n-1's spikes).
    lanes : list of SynapseLane
    busy : Value
        An event is being walked or a lane still has an update to write (a new expression per read).

    Latency and throughput: those of the walker and the lanes in series: an event accepted in cycle k
    with a walk of L commands costs max(1, L) cycles (interval 1; max(1, 2L) with interval 2); its last
    update, issued in cycle U, is written in U + ``FanOutWalker.OUTPUT_LATENCY`` + the lane's stages - 1.

    Flattened (``add_to`` adds the walker and the lanes to the parent module, no module of its own), so
    the design's Verilog keeps the module hierarchy it had before the top was split.

    Parameters (keyword-only)
    ----------
    target : TargetPlan
        The linear map into the layer.
    value_shape : Shape
        Shape of an event's value: unsigned(1) for spikes, the pixel or the count shape for layer 1.
    weight_bits : int, at least 2
    width : int, at least 2
        Bits of the banks' words (membrane or current).
    lanes : int, at least 1
    interval : 1 or 2
        Cycles between two updates of one bank (dual-port or single-port banks).
    max_shift : int, at least 0
        Binary coding into layers 2..N: the largest weight shift (T - 1); 0: no shift.
    shift : Value or None
        The shift (T - t), required when ``max_shift`` > 0.
    name : str or None
        The suffix of the submodules' names (default: the layer number; a graph edge's name).
    """

    def __init__(self, *, target: TargetPlan, value_shape: Shape, weight_bits: int, width: int, lanes: int,
                 interval: int, max_shift: int = 0, shift: Value | None = None, name: str | None = None):
        owner = "IntegrationEngine"
        check_type(owner, "target", target, TargetPlan)
        check_type(owner, "value_shape", value_shape, Shape)
        check_int(owner, "weight_bits", weight_bits, 2)
        check_int(owner, "width", width, 2)
        check_int(owner, "lanes", lanes, 1)
        check_choice(owner, "interval", check_int(owner, "interval", interval), (1, 2))
        check_int(owner, "max_shift", max_shift, 0)
        check_type(owner, "shift", shift, Value, optional=True)
        if (shift is None) != (max_shift == 0):
            raise ValueError(f"{owner}: shift must be given exactly when max_shift > 0")
        self.number = target.index + 1
        self.name = str(self.number) if name is None else name
        self.shift = shift
        self.walker = FanOutWalker(target, value_shape, interval)
        c_out = target.out_shape[0]
        layout = update_layout(target, value_shape)
        self.lanes = [SynapseLane(weights=target.weight_roms[lane], weight_bits=weight_bits, update_layout=layout,
                                  width=width, depth=pow2_depth(target.depth_used), lane=lane, lanes=lanes,
                                  channels=c_out, max_shift=max_shift, registered_read=interval == 1)
                      for lane in range(min(lanes, c_out))]

    @property
    def busy(self) -> Value:
        """The walker or one of the lanes is busy."""
        busy = self.walker.busy
        for unit in self.lanes:
            busy = busy | unit.busy
        return busy

    def add_to(self, m: Module) -> None:
        """Add the walker and the lanes to ``m`` and broadcast the walker's commands."""
        walker = self.walker
        m.submodules[f"walker{self.name}"] = walker
        for lane, unit in enumerate(self.lanes):
            m.submodules[f"lane{self.name}_{lane}"] = unit
            if self.shift is not None:
                m.d.comb += unit.shift.eq(self.shift)
            m.d.comb += [unit.update.valid.eq(walker.updates.valid),
                         unit.update.payload.eq(walker.updates.payload)]
