"""Input feed: the image's pixels (or the input events) into layer 1's walker."""
from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream

from .checks import check_bool, check_int, check_stream, check_type
from .counters import advance_nested
from .plan import HardwarePlan, bits_for
from .walker import FanOutWalker


def pixel_shape(plan: HardwarePlan):
    """Shape of one input pixel x_q."""
    return signed(plan.input_bits) if plan.input_signed else unsigned(plan.input_bits)


class InputFeed:
    """Turns the input stream into events (c, y, x, value) for layer 1's walker.

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
    walker takes it, and the walker takes one per event walk (max(1, its fan-out cycles)).

    Flattened (``add_to`` adds statements to the parent module, no module of its own), so the
    design's Verilog is the same as before the top was split into components.

    Parameters (keyword-only)
    ----------
    source : stream.Interface
        The design's input stream (pixels, or event words with ``events``).
    walker : FanOutWalker
        Layer 1's walker.
    input_shape : tuple of three int, each at least 1
        (C, H, W) of the image.
    events : bool
        Event input.
    """

    def __init__(self, *, source: stream.Interface, walker: FanOutWalker, input_shape: tuple[int, int, int],
                 events: bool):
        owner = "InputFeed"
        check_stream(owner, "source", source)
        check_type(owner, "walker", walker, FanOutWalker)
        check_type(owner, "input_shape", input_shape, tuple)
        if len(input_shape) != 3:
            raise ValueError(f"{owner}: input_shape must be (C, H, W), not {input_shape!r}")
        for size in input_shape:
            check_int(owner, "input_shape size", size, 1)
        check_bool(owner, "events", events)
        self.source = source
        self.walker = walker
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
        source, load_events = self.source, self.walker.events
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
        """In the controller's load state: connect the stream to the walker and advance the position
        with each handshake; the ``with`` body runs in the cycle that takes the last word."""
        source, load_events = self.source, self.walker.events
        m.d.comb += [load_events.valid.eq(source.valid), source.ready.eq(load_events.ready)]
        with m.If(source.valid & load_events.ready):
            if not self.events:
                pc, py, px = self.counters
                _, h_in, w_in = self.input_shape
                advance_nested(m, [(px, w_in - 1), (py, h_in - 1), (pc, None)])
            with m.If(self.last_word):
                yield
