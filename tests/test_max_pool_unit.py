# amaranth: UnusedElaboratable=no
"""MaxPoolUnit: the event-driven max-pool node (rate and binary coding) against plain-loop references, its exact
timing and its clear."""
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from amaranth.hdl import unsigned
from amaranth.sim import Simulator

from ecc_hw.graph.cycle_model import POOL_BUSY_LATENCY, POOL_SPIKE_LATENCY
from ecc_hw.graph.network import LAYER, MaxPoolNode, Source
from ecc_hw.graph.pooling import max_pool, window_cells
from ecc_hw.graph.radix import max_pool_bits
from ecc_hw.rtl_gen.max_pool_unit import MaxPoolUnit


def pool_size(size, kernel, stride, dilation, before, after, ceil):
    """ONNX / PyTorch output size of one axis (None: the window is larger than the padded map)."""
    span = size + before + after - dilation * (kernel - 1) - 1
    if span < 0:
        return None
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + before:     # the last window must start inside the map or its left pad
        out -= 1
    return out


@dataclass(frozen=True)
class Geometry:
    channels: int
    height: int
    width: int
    out_h: int
    out_w: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    ceil: bool
    lanes: int
    timesteps: int

    def unit(self, **overrides):
        kwargs = dict(input_shape=(self.channels, self.height, self.width),
                      output_shape=(self.channels, self.out_h, self.out_w), kernel=self.kernel, stride=self.stride,
                      padding=self.padding, dilation=self.dilation, lanes=self.lanes, timesteps=self.timesteps)
        kwargs.update(overrides)
        return MaxPoolUnit(**kwargs)

    def node(self):
        return MaxPoolNode(1, "pool", Source(LAYER, 1), (self.channels, self.height, self.width),
                           (self.channels, self.out_h, self.out_w), self.kernel, self.stride, self.padding,
                           self.dilation, self.ceil)


def make_geometry(channels, height, width, kernel, stride, padding, dilation, ceil, lanes, timesteps):
    top, left, bottom, right = padding
    out_h = pool_size(height, kernel[0], stride[0], dilation[0], top, bottom, ceil)
    out_w = pool_size(width, kernel[1], stride[1], dilation[1], left, right, ceil)
    if out_h is None or out_w is None:
        return None
    return Geometry(channels, height, width, out_h, out_w, tuple(kernel), tuple(stride), tuple(padding),
                    tuple(dilation), ceil, lanes, timesteps)


# ---- plain-loop references ------------------------------------------------------------------------------

def window(g, py, px):
    """The non-padding source cells (y, x) of pool neuron (py, px)'s window."""
    top, left = g.padding[0], g.padding[1]
    cells = []
    for i in range(g.kernel[0]):
        for k in range(g.kernel[1]):
            y = py * g.stride[0] - top + i * g.dilation[0]
            x = px * g.stride[1] - left + k * g.dilation[1]
            if 0 <= y < g.height and 0 <= x < g.width:
                cells.append((y, x))
    return cells


def window_offsets(g, py, px):
    """The window offsets ky * kw + kx of pool neuron (py, px)'s non-padding cells, by cell (y, x)."""
    top, left = g.padding[0], g.padding[1]
    offsets = {}
    for i in range(g.kernel[0]):
        for k in range(g.kernel[1]):
            y = py * g.stride[0] - top + i * g.dilation[0]
            x = px * g.stride[1] - left + k * g.dilation[1]
            if 0 <= y < g.height and 0 <= x < g.width:
                offsets[y, x] = i * g.kernel[1] + k
    return offsets


def reachable(g, c, y, x):
    """The pool neurons (c, py, px) whose window holds source cell (y, x), row-major."""
    return [(c, py, px) for py in range(g.out_h) for px in range(g.out_w) if (y, x) in window(g, py, px)]


def reference_spikes(g, trains):
    """Per step, the set of pool neurons (c, py, px) that spike: D_p(t) > D_p(t-1), by loops."""
    counts = [[[0] * g.width for _ in range(g.height)] for _ in range(g.channels)]
    maxima = [[[0] * g.out_w for _ in range(g.out_h)] for _ in range(g.channels)]
    steps = []
    for t in range(len(trains)):
        for c in range(g.channels):
            for y in range(g.height):
                for x in range(g.width):
                    counts[c][y][x] += int(trains[t][c][y][x])
        fired = set()
        for c in range(g.channels):
            for py in range(g.out_h):
                for px in range(g.out_w):
                    best = max([counts[c][y][x] for y, x in window(g, py, px)], default=0)
                    if best > maxima[c][py][px]:
                        assert best == maxima[c][py][px] + 1
                        fired.add((c, py, px))
                        maxima[c][py][px] = best
        steps.append(fired)
    return steps


def library_spikes(g, trains):
    """The same from ecc_hw.graph.pooling.max_pool over the running counts (as graph.simulate)."""
    running = np.cumsum(trains.reshape(len(trains), -1), axis=0, dtype=np.uint8)
    maximum = max_pool(g.node(), running).astype(np.int64)
    grown = np.diff(maximum, axis=0, prepend=np.zeros_like(maximum[:1]))
    shape = (g.channels, g.out_h, g.out_w)
    return [{tuple(int(v) for v in np.unravel_index(n, shape)) for n in np.flatnonzero(row)} for row in grown]


def pool_neurons(g):
    return [(c, py, px) for c in range(g.channels) for py in range(g.out_h) for px in range(g.out_w)]


def reference_binary_spikes(g, trains):
    """Binary coding by the tied-set rule, by loops: per step the set of pool neurons that spike (a cell still
    tied fires; then the tied cells that did not fire drop out), and per pool neuron its final tied set (window
    offsets) and the last step (1..T, 0: none) it spiked."""
    tied = {(c, py, px): set(window(g, py, px)) for c, py, px in pool_neurons(g)}
    last = dict.fromkeys(tied, 0)
    steps = []
    for t in range(len(trains)):
        fired = set()
        for p in pool_neurons(g):
            hit = {cell for cell in tied[p] if trains[t][p[0]][cell[0]][cell[1]]}
            if hit:
                fired.add(p)
                tied[p], last[p] = hit, t + 1
        steps.append(fired)
    offsets = {p: {window_offsets(g, p[1], p[2])[cell] for cell in cells} for p, cells in tied.items()}
    return steps, offsets, last


def prefix_spikes(g, trains):
    """The same from the MSB-first prefix maxima, by loops: s_p(t) = D_p(t) - 2 D_p(t-1) (5.4)."""
    prefix = np.zeros(trains.shape[1:], dtype=np.int64)
    maxima = dict.fromkeys(pool_neurons(g), 0)
    steps = []
    for t in range(len(trains)):
        prefix = 2 * prefix + trains[t]
        fired = set()
        for c, py, px in pool_neurons(g):
            best = max([int(prefix[c, y, x]) for y, x in window(g, py, px)], default=0)
            bit = best - 2 * maxima[c, py, px]
            assert bit in (0, 1)
            if bit:
                fired.add((c, py, px))
            maxima[c, py, px] = best
        steps.append(fired)
    return steps


def library_binary_spikes(g, trains):
    """The same from ecc_hw.graph.radix.max_pool_bits (the golden model's max-pool node)."""
    bits = max_pool_bits(g.node(), trains.reshape(len(trains), 1, -1))
    shape = (g.channels, g.out_h, g.out_w)
    return [{tuple(int(v) for v in np.unravel_index(n, shape)) for n in np.flatnonzero(row[0])} for row in bits]


# ---- the simulation -------------------------------------------------------------------------------------

@dataclass
class Event:
    image: int
    step: int
    cell: tuple          # (c, y, x)
    gap: int             # idle cycles before it is presented
    presented: int = -1
    accepted: int = -1
    issued: int = -1


def channel_major(dut, banks, per_channel):
    """The words of lane-banked memory ``banks`` in channel-major order (channel c: bank c % P, words
    (c // P) * per_channel ..)."""
    return [banks.memories[c % dut.lanes].data[(c // dut.lanes) * per_channel + k]
            for c in range(dut.input_shape[0]) for k in range(per_channel)]


def simulate(g, images, waits, clear_bits=None, binary=False):
    """Feed ``images`` (each a list of steps, each a list of Events) to the unit; ``waits[i][t]``: wait
    for ``busy`` low before step t of image i. Between images: drain, then the clear sweep. Returns the
    spike words (cycle, payload, neuron), the busy trace and the memories after each image (before its
    clear) and after each clear. Binary coding: ``t`` changes to step t + 1 as soon as step t's last event
    is accepted (before any wait) and to 0 after an image's last event, while its updates are in flight."""
    overrides = {} if clear_bits is None else {"clear_bits": clear_bits}
    dut = g.unit(binary=binary, **overrides)
    words, busy, memories = [], [], []
    cycle = 0

    async def tb(ctx):
        nonlocal cycle

        async def tick():
            nonlocal cycle
            busy.append(ctx.get(dut.busy))
            if ctx.get(dut.spikes.valid):
                words.append((cycle, ctx.get(dut.spikes.payload), ctx.get(dut.neuron)))
            await ctx.tick()
            cycle += 1

        async def drain():
            while ctx.get(dut.busy):
                await tick()
            for _ in range(2):
                await tick()

        def dump():
            pools = [ctx.get(word) for word in channel_major(dut, dut.max_banks, g.out_h * g.out_w)]
            if binary:
                return [(int(w.tied), int(w.survivors), int(w.fired_at)) for w in pools]
            return [ctx.get(word) for word in channel_major(dut, dut.count_banks, g.height * g.width)], pools

        for image, steps in enumerate(images):
            for t, events in enumerate(steps):
                if binary:
                    ctx.set(dut.t, t + 1)
                if waits[image][t]:
                    await drain()
                for event in events:
                    for _ in range(event.gap):
                        await tick()
                    c, y, x = event.cell
                    ctx.set(dut.events.payload, {"c": c, "y": y, "x": x, "value": 1})
                    ctx.set(dut.events.valid, 1)
                    event.presented = cycle
                    while not ctx.get(dut.events.ready):
                        await tick()
                    event.accepted = cycle
                    await tick()
                    ctx.set(dut.events.valid, 0)
            if binary:
                ctx.set(dut.t, 0)
            await drain()
            memories.append(dump())
            ctx.set(dut.clear_en, 1)
            for address in range(dut.clear_depth):
                ctx.set(dut.clear_addr, address)
                await tick()
            ctx.set(dut.clear_en, 0)
            await tick()
            memories.append(dump())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return dut, words, busy, memories


def check(g, trains_per_image, images, waits, clear_bits=None, binary=False):
    """Simulate and check everything against the references and the documented timing (the same in both
    codes). Returns the number of events whose first pool neuron is the previous event's last, issued right
    after it (the pool word forwarded while that one updates it)."""
    dut, words, busy, memories = simulate(g, images, waits, clear_bits, binary)
    events = [event for steps in images for events in steps for event in events]
    fan = {}
    for c in range(g.channels):
        for y in range(g.height):
            for x in range(g.width):
                fan[c, y, x] = reachable(g, c, y, x)
                assert dut.fan_out(y, x) == len(fan[c, y, x])

    # events.ready: an event is taken into the input register as soon as it is empty or issues; it is
    # issued one cycle later at the earliest, and max(1, F) cycles after the previous one at the earliest
    issue_free = 0                   # the first cycle the walk can take the next event
    register_free = 0                # the first cycle the input register can take the next event
    forwarded = 0
    for previous, event in zip([None] + events, events):
        assert event.accepted == max(event.presented, register_free), event
        event.issued = max(event.accepted + 1, issue_free)
        if (previous is not None and fan[previous.cell] and fan[event.cell]
                and fan[previous.cell][-1] == fan[event.cell][0] and event.issued == issue_free):
            forwarded += 1
        issue_free = event.issued + max(1, len(fan[event.cell]))
        register_free = event.issued

    # busy: high from a+1 to i+2+F of every event (i: its issue cycle), low otherwise
    expected = [False] * len(busy)
    for event in events:
        for k in range(event.accepted + 1, event.issued + MaxPoolUnit.BUSY_LATENCY - 1 + len(fan[event.cell])):
            expected[k] = True
    assert [bool(b) for b in busy] == expected

    # spike words: p_j of the event issued in i at i - 1 + SPIKE_LATENCY + j
    emitted = [[set() for _ in steps] for steps in images]
    starts = {}
    for event in events:
        for j, neuron in enumerate(fan[event.cell]):
            starts[event.issued - 1 + MaxPoolUnit.SPIKE_LATENCY + j] = (event, neuron)
    for cycle, word, index in words:
        assert cycle in starts, f"a spike word in cycle {cycle} that no event's pool neuron owns"
        event, (c, py, px) = starts[cycle]
        group = c // g.lanes
        assert (word.group, word.y, word.x, word.mask) == (group, py, px, 1 << (c % g.lanes))
        assert index == ((group * g.lanes) * g.out_h + py) * g.out_w + px
        step = emitted[event.image][event.step]
        assert (c, py, px) not in step, "a pool neuron spiked twice in one step"
        step.add((c, py, px))

    if binary:
        cells = g.kernel[0] * g.kernel[1]
        ones = (1 << cells) - 1
        for image, trains in enumerate(trains_per_image):
            reference, tied, last = reference_binary_spikes(g, trains)
            assert reference == prefix_spikes(g, trains) == library_binary_spikes(g, trains)
            assert emitted[image] == reference, image
            # the pool words after the image: the last step each spiked and its tied set; after the clear:
            # fresh (fired_at 0, all tied)
            for (c, py, px), (_, survivors, fired_at) in zip(pool_neurons(g), memories[2 * image]):
                assert fired_at == last[c, py, px]
                current = survivors if fired_at else ones
                valid = set(window_offsets(g, py, px).values())
                assert {k for k in valid if current >> k & 1} == tied[c, py, px]
            assert memories[2 * image + 1] == [(ones, ones, 0)] * dut.pool_words
        return forwarded

    for image, trains in enumerate(trains_per_image):
        reference = reference_spikes(g, trains)
        assert reference == library_spikes(g, trains)
        assert emitted[image] == reference, image
        # the memories after the image: the counts and D_p(T); after the clear: zero
        counts = trains.sum(axis=0)
        maxima = [max([counts[c, y, x] for y, x in window(g, py, px)], default=0)
                  for c in range(g.channels) for py in range(g.out_h) for px in range(g.out_w)]
        assert memories[2 * image] == ([int(v) for v in counts.reshape(-1)], maxima)
        assert memories[2 * image + 1] == ([0] * dut.source_words, [0] * dut.pool_words)
    return forwarded


def schedule(g, trains_per_image, rng):
    """Events per image and step (random order within a step, random gaps) and the waits between steps."""
    images, waits = [], []
    for image, trains in enumerate(trains_per_image):
        steps = []
        for t in range(len(trains)):
            cells = [tuple(int(v) for v in cell) for cell in np.argwhere(trains[t])]
            order = rng.permutation(len(cells))
            steps.append([Event(image, t, cells[n], int(rng.integers(1, 4)) if rng.random() < 0.3 else 0)
                          for n in order])
        images.append(steps)
        waits.append([bool(rng.random() < 0.5) for _ in trains])
    return images, waits


@st.composite
def geometries(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    g = make_geometry(
        draw(st.integers(1, 5)), draw(st.integers(1, 7)), draw(st.integers(1, 7)), kernel,
        (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        (draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1)),
         draw(st.integers(0, kernel[0] - 1)), draw(st.integers(0, kernel[1] - 1))),
        (draw(st.integers(1, 2)), draw(st.integers(1, 2))), draw(st.booleans()),
        draw(st.sampled_from([1, 2, 4])), draw(st.integers(1, 6)))
    assume(g is not None and window_cells(g.node()).min() > 0)    # a window of padding only is refused
    return g


@settings(max_examples=25, deadline=None)
@given(g=geometries(), seed=st.integers(0, 2**32 - 1))
def test_matches_references_and_timing(g, seed):
    rng = np.random.default_rng(seed)
    shape = (g.timesteps, g.channels, g.height, g.width)
    trains = [rng.random(shape) < rng.uniform(0.1, 0.9) for _ in range(2)]
    images, waits = schedule(g, trains, rng)
    check(g, trains, images, waits)


def _directed(g, cells_per_step, gap=0):
    trains = np.zeros((len(cells_per_step), g.channels, g.height, g.width), dtype=bool)
    for t, cells in enumerate(cells_per_step):
        for cell in cells:
            trains[(t, *cell)] = True
    steps = [[Event(0, t, cell, gap) for cell in cells] for t, cells in enumerate(cells_per_step)]
    return [trains], [steps], [[False] * len(cells_per_step)]


def test_same_source_back_to_back():
    """One source spiking every step with no gap: the count and the max are forwarded (F = 1, so the
    next event reads both while the previous one updates them)."""
    g = make_geometry(1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False, 1, 5)
    check(g, *_directed(g, [[(0, 0, 0)]] * 5))


def test_unreachable_source_back_to_back():
    """A source no window holds (F = 0) accepted every cycle: its count is forwarded from the event
    one ahead; the next reachable one still sees the max written by the last reachable event."""
    g = make_geometry(2, 3, 1, (1, 1), (2, 1), (0, 0, 0, 0), (1, 1), False, 2, 6)
    assert g.out_h == 2
    steps = [[(1, 1, 0), (1, 2, 0)]] + [[(1, 1, 0)]] * 4 + [[(1, 1, 0), (1, 0, 0)]]
    check(g, *_directed(g, steps))


def test_overlapping_windows_back_to_back():
    """Every source hits the pool neurons of its neighbours, events back to back; the clear port is
    wider than it needs to be."""
    g = make_geometry(3, 4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, 4, 3)
    rng = np.random.default_rng(7)
    cells = [(c, y, x) for c in range(3) for y in range(4) for x in range(4)]
    steps = [[cells[n] for n in rng.permutation(len(cells))] for _ in range(3)]
    check(g, *_directed(g, steps), clear_bits=12)


def test_ceil_mode_edge_window():
    """Ceil mode: the last pool row and column have windows partly past the padded map."""
    g = make_geometry(1, 5, 5, (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), True, 1, 2)
    assert (g.out_h, g.out_w) == (3, 3)
    steps = [[(0, 4, 4), (0, 3, 3)], [(0, 4, 4), (0, 0, 0)]]
    check(g, *_directed(g, steps))


# ---- binary (radix) coding ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(g=geometries(), seed=st.integers(0, 2**32 - 1))
def test_binary_matches_references_and_timing(g, seed):
    rng = np.random.default_rng(seed)
    shape = (g.timesteps, g.channels, g.height, g.width)
    trains = [rng.random(shape) < rng.uniform(0.1, 0.9) for _ in range(2)]
    images, waits = schedule(g, trains, rng)
    check(g, trains, images, waits, binary=True)


# Two cells (0, 0, 0) and (0, 1, 0) of one 2 x 1 window. Levels 100111 and 101011: the pool sends 101011.
TIE_STEPS = [
    [(0, 1, 0), (0, 0, 0)],      # both tied cells fire: p spikes on the first, the second stays tied
    [],                          # nothing fires: the tied set stays {0, 1}
    [(0, 1, 0)],                 # cell 1 fires, cell 0 drops out
    [(0, 0, 0)],                 # no longer tied: no spike
    [(0, 0, 0), (0, 1, 0)],      # the untied cell first, then the tied one: p spikes on the second
    [(0, 1, 0), (0, 0, 0)],      # the tied one first: p spikes, cell 0 is still not tied
]
TIE_BITS = [1, 0, 1, 0, 1, 1]


def test_binary_tie_and_drop_out():
    """Two cells tie for the maximum, one drops out; events spaced (no forwarding)."""
    g = make_geometry(1, 2, 1, (2, 1), (2, 1), (0, 0, 0, 0), (1, 1), False, 1, 6)
    assert (g.out_h, g.out_w) == (1, 1)
    trains, images, waits = _directed(g, TIE_STEPS, gap=4)
    steps, tied, last = reference_binary_spikes(g, trains[0])
    assert steps == [{(0, 0, 0)} if bit else set() for bit in TIE_BITS]
    assert tied[0, 0, 0] == {1} and last[0, 0, 0] == 6
    assert check(g, trains, images, waits, binary=True) == 0


def test_binary_same_pool_neuron_back_to_back():
    """The same steps back to back (F = 1): every event reads the pool word while the event ahead updates
    it (forwarded), within a step and across steps."""
    g = make_geometry(1, 2, 1, (2, 1), (2, 1), (0, 0, 0, 0), (1, 1), False, 1, 6)
    assert check(g, *_directed(g, TIE_STEPS), binary=True) == 7
    g = make_geometry(1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), False, 1, 5)
    assert check(g, *_directed(g, [[(0, 0, 0)]] * 5), binary=True) == 4


def test_binary_overlapping_windows_back_to_back():
    """Every source hits the pool neurons of its neighbours (F up to 9), events back to back, including
    pairs whose previous last pool neuron is the next one's first; a wider clear port."""
    g = make_geometry(3, 4, 4, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False, 4, 4)
    rng = np.random.default_rng(11)
    cells = [(c, y, x) for c in range(3) for y in range(4) for x in range(4)]
    steps = [[(0, 1, 1), (0, 3, 3)]] + [[cells[n] for n in rng.permutation(len(cells)) if rng.random() < 0.6]
                                        for _ in range(3)]
    assert check(g, *_directed(g, steps), clear_bits=12, binary=True) >= 1


def test_binary_interface():
    rate, binary = MaxPoolUnit(**GOOD), MaxPoolUnit(**GOOD, binary=True)
    assert "t" not in rate.signature.members and "t" in binary.signature.members
    assert binary.t.shape() == unsigned(3)
    assert binary.clear_depth == rate.clear_depth == 16 and binary.clear_bits == 4
    assert binary.state_layout.size == 4 + 4 + 3
    assert binary.row_offsets == [0, 2, 0, 2] and binary.col_offsets == [0, 1, 0, 1]


GOOD = dict(input_shape=(2, 4, 4), output_shape=(2, 2, 2), kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0),
            dilation=(1, 1), lanes=2, timesteps=4)


@pytest.mark.parametrize("name, value", [
    ("input_shape", (2, 4)), ("input_shape", (0, 4, 4)), ("output_shape", (2, 3, 2)),
    ("output_shape", (3, 2, 2)), ("kernel", (0, 2)), ("kernel", (9, 2)), ("stride", (2, 0)),
    ("padding", (0, -1, 0, 0)), ("padding", (0, 0)), ("dilation", (1, 0)), ("lanes", 3), ("lanes", 0),
    ("timesteps", 0), ("clear_bits", 2), ("binary", 1),
])
def test_bad_arguments(name, value):
    with pytest.raises(ValueError, match=f"MaxPoolUnit: .*{name}"):
        MaxPoolUnit(**{**GOOD, name: value})


def test_the_graph_cycle_model_keeps_the_units_latencies():
    assert (POOL_SPIKE_LATENCY, POOL_BUSY_LATENCY) == (MaxPoolUnit.SPIKE_LATENCY, MaxPoolUnit.BUSY_LATENCY)


def test_good_arguments():
    unit = MaxPoolUnit(**GOOD)
    assert (unit.banks, unit.count_words, unit.max_words) == (2, 16, 4)
    assert unit.clear_depth == 16 and unit.clear_bits == 4
    assert unit.rows.counts == [1, 1, 1, 1] and unit.fan_out(3, 0) == 1


def test_write_cycles():
    """The count is written in a + COUNT_WRITE_LATENCY and max[p_j] in a + SPIKE_LATENCY + j (each word
    holds its new value from the next cycle on)."""
    g = make_geometry(1, 3, 3, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), False, 1, 2)
    dut = g.unit()
    trace = []

    async def tb(ctx):
        await ctx.tick().repeat(2)
        ctx.set(dut.events.payload, {"c": 0, "y": 1, "x": 1, "value": 1})
        ctx.set(dut.events.valid, 1)
        for cycle in range(12):
            trace.append((cycle, ctx.get(dut.events.ready), ctx.get(dut.count_banks.memories[0].data[4]),
                          [ctx.get(dut.max_banks.memories[0].data[p]) for p in range(4)]))
            await ctx.tick()
            ctx.set(dut.events.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    # accepted in cycle a = 0 (F = 4), issued in 1: a lone event leaves the input register free
    assert [ready for _, ready, _, _ in trace] == [1] * 12
    assert [count for _, _, count, _ in trace] == [0] * (MaxPoolUnit.COUNT_WRITE_LATENCY + 1) + [1] * (
        12 - MaxPoolUnit.COUNT_WRITE_LATENCY - 1)
    for j in range(4):
        first = MaxPoolUnit.SPIKE_LATENCY + j + 1
        assert [maxima[j] for _, _, _, maxima in trace] == [0] * first + [1] * (12 - first)


def test_binary_write_cycles():
    """Binary coding: p_j's word is written in a + SPIKE_LATENCY + j (fired_at 1 from the next cycle on),
    with the ready timing of rate coding."""
    g = make_geometry(1, 3, 3, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), False, 1, 2)
    dut = g.unit(binary=True)
    trace = []

    async def tb(ctx):
        await ctx.tick().repeat(2)
        ctx.set(dut.t, 1)
        ctx.set(dut.events.payload, {"c": 0, "y": 1, "x": 1, "value": 1})
        ctx.set(dut.events.valid, 1)
        for _ in range(12):
            trace.append((ctx.get(dut.events.ready), [ctx.get(dut.max_banks.memories[0].data[p]) for p in range(4)]))
            await ctx.tick()
            ctx.set(dut.events.valid, 0)
            ctx.set(dut.t, 2)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert [ready for ready, _ in trace] == [1] * 12
    for j in range(4):
        first = MaxPoolUnit.SPIKE_LATENCY + j + 1
        assert [int(words[j].fired_at) for _, words in trace] == [0] * first + [1] * (12 - first)
        # cell (1, 1) is window offset 3 - j of p_j = (j // 2, j % 2)
        assert (int(trace[-1][1][j].tied), int(trace[-1][1][j].survivors)) == (15, 1 << (3 - j))
