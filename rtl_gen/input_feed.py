"""Input feed: the image's pixels (or the input events) into the walkers of the edges that read the input."""
from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream

from .checks import check_bool, check_int, check_list, check_stream, check_type
from .counters import advance_nested
from .plan import HardwarePlan, bits_for
from .walker import FanOutWalker


def pixel_shape(plan: HardwarePlan):
    """Shape of one input pixel x_q."""
    return signed(plan.input_bits) if plan.input_signed else unsigned(plan.input_bits)


class InputFeed:
    """Turns the input stream into events (c, y, x, value) for the input edges' walkers (a chain's layer 1;
    a graph's every edge from the input, each into its own layer).

    Image input: the pixels come in channel-major order (c, y, x); counters (``pc``, ``py``, ``px``)
    give each pixel its position and its value is the event's value (a zero pixel is a no-op walk of
    one cycle). Event input (``rtl_gen.event_input``): each word is an event with its count as the value;
    a ``frame_end`` word enters the walker as a no-op (count 0), one cycle.

    Members
    -------
    counters : list of Signal
        The pixel position (``pc``, ``py``, ``px``; empty with event input), reset by the controller.
    last_word : Value
        The word on the input stream is the image's last pixel (or its frame's marker).

    Latency and throughput: combinational (no registers of its own): a word moves in the cycle the
    walker takes it, and the walker takes one per event walk (max(1, its fan-out cycles)). With several
    walkers the word is offered to all of them once all are ready and moves when they take it together:
    one per max(1, the longest of its walks) cycles.

    Flattened (``add_to`` adds statements to the parent module, no module of its own), so the
    design's Verilog is the same as before the top was split into components.

    Parameters (keyword-only)
    ----------
    source : stream.Interface
        The design's input stream (pixels, or event words with ``events``).
    walkers : list of FanOutWalker, at least one
        The input edges' walkers.
    input_shape : tuple of three int, each at least 1
        (C, H, W) of the image.
    events : bool
        Event input.
    """

    def __init__(self, *, source: stream.Interface, walkers: list[FanOutWalker], input_shape: tuple[int, int, int],
                 events: bool):
        owner = "InputFeed"
        check_stream(owner, "source", source)
        if not check_list(owner, "walkers", walkers, FanOutWalker):
            raise ValueError(f"{owner}: walkers must be a non-empty list")
        check_type(owner, "input_shape", input_shape, tuple)
        if len(input_shape) != 3:
            raise ValueError(f"{owner}: input_shape must be (C, H, W), not {input_shape!r}")
        for size in input_shape:
            check_int(owner, "input_shape size", size, 1)
        check_bool(owner, "events", events)
        self.source = source
        self.walkers = walkers
        self.input_shape = input_shape
        self.events = events
        c_in, h_in, w_in = input_shape
        if events:
            self.counters = []
            self.last_word = source.payload.frame_end
        else:
            pc = Signal(bits_for(c_in - 1), name="pc")
            py = Signal(bits_for(h_in - 1), name="py")
            px = Signal(bits_for(w_in - 1), name="px")
            self.counters = [pc, py, px]
            self.last_word = (pc == c_in - 1) & (py == h_in - 1) & (px == w_in - 1)

    def add_to(self, m: Module) -> None:
        """Add the assignments of the walker's event fields to ``m``."""
        source = self.source
        for walker in self.walkers:
            load_events = walker.events
            if self.events:
                word = source.payload
                m.d.comb += [load_events.payload.c.eq(word.c), load_events.payload.y.eq(word.y),
                             load_events.payload.x.eq(word.x),
                             load_events.payload.value.eq(Mux(word.frame_end, 0, word.count))]
            else:
                pc, py, px = self.counters
                m.d.comb += [load_events.payload.c.eq(pc), load_events.payload.y.eq(py),
                             load_events.payload.x.eq(px), load_events.payload.value.eq(source.payload)]

    @contextmanager
    def loading(self, m: Module):
        """In the controller's load state: connect the stream to the walkers and advance the position
        with each handshake; the ``with`` body runs in the cycle that takes the last word."""
        source = self.source
        if len(self.walkers) == 1:
            load_events = self.walkers[0].events
            m.d.comb += [load_events.valid.eq(source.valid), source.ready.eq(load_events.ready)]
            taken = source.valid & load_events.ready
        else:       # offered to all once all are ready, so that they take it together
            ready = Cat(walker.events.ready for walker in self.walkers).all()
            m.d.comb += [walker.events.valid.eq(source.valid & ready) for walker in self.walkers]
            m.d.comb += source.ready.eq(ready)
            taken = source.valid & ready
        with m.If(taken):
            if not self.events:
                pc, py, px = self.counters
                _, h_in, w_in = self.input_shape
                advance_nested(m, [(px, w_in - 1), (py, h_in - 1), (pc, None)])
            with m.If(self.last_word):
                yield
