"""Unit tests of the components: synapse lane hazards, walker fan-out, spike buffer order."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from ecc_hw.testing import random_network
from ecc_hw.rtl_gen.lane import SynapseLane
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.rtl_gen.spike_buffer import SpikeBuffer
from ecc_hw.rtl_gen.walker import FanOutWalker

WIDTH = 16
SPIKE = unsigned(1)      # the value shape of a spike: the weight is added as is


class _LaneBench(wiring.Component):
    """A SynapseLane on one membrane bank: a plain registered read port as in the top level, or one
    transparent for the write port (the lane's forwarding must not depend on which)."""

    def __init__(self, weights, layout, transparent=False):
        self.lane = SynapseLane(weights=weights, weight_bits=8, update_layout=layout, width=WIDTH, depth=8,
                                lane=0, lanes=1, channels=1)
        self.transparent = transparent
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.lane = lane = self.lane
        m.submodules.bank = self.bank = bank = Memory(shape=signed(WIDTH), depth=8, init=[])
        wp = bank.write_port()
        rp = bank.read_port(transparent_for=(wp,) if self.transparent else ())
        m.d.comb += [rp.addr.eq(lane.rd_addr), lane.rd_data.eq(rp.data), wp.addr.eq(lane.wr_addr),
                     wp.data.eq(lane.wr_data), wp.en.eq(lane.wr_en)]
        return m


def _run_lane(updates, weights, value_shape=SPIKE, transparent=False):
    """Issue (maddr, waddr, value) updates one per cycle (None = idle); return the bank contents."""
    from amaranth.lib import data
    layout = data.StructLayout({"group": 1, "maddr": 3, "waddr": 3, "value": value_shape})
    dut = _LaneBench(weights, layout, transparent)
    bank = {}

    async def tb(ctx):
        for update in updates:
            if update is None:
                ctx.set(dut.lane.update.valid, 0)
            else:
                maddr, waddr, value = update
                ctx.set(dut.lane.update.valid, 1)
                ctx.set(dut.lane.update.payload, {"group": 0, "maddr": maddr, "waddr": waddr, "value": value})
            await ctx.tick()
        ctx.set(dut.lane.update.valid, 0)
        await ctx.tick().repeat(6)
        for addr in range(8):
            bank[addr] = ctx.get(dut.bank.data[addr])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return [bank[a] for a in range(8)]


def _reference(updates, weights):
    mem = [0] * 8
    for update in updates:
        if update is not None:
            maddr, waddr, value = update
            mem[maddr] += weights[waddr] * value
    return mem


@pytest.mark.parametrize("transparent", [False, True])
def test_back_to_back_updates_to_one_neuron(transparent):
    weights = [3, -5, 7, 1, -128 + 1, 127, 2, -2]
    updates = [(4, k % 8, 1) for k in range(20)]                 # 20 updates in a row, same neuron
    assert _run_lane(updates, weights, transparent=transparent) == _reference(updates, weights)


def test_updates_two_apart_are_forwarded():
    """Same neuron every other update, and after one idle cycle (the distance-2 forwarding path)."""
    weights = [3, -5, 7, 1, -128 + 1, 127, 2, -2]
    updates = [(k % 2, k % 8, 1) for k in range(12)] + [(5, 1, 1), None, (5, 2, 1), None, None, (5, 3, 1)]
    assert _run_lane(updates, weights) == _reference(updates, weights)


@pytest.mark.parametrize("transparent", [False, True])
def test_mixed_hazards_and_gaps(transparent):
    rng = np.random.default_rng(5)
    weights = [int(w) for w in rng.integers(-127, 128, size=8)]
    updates = []
    for _ in range(60):
        updates.append(None if rng.random() < 0.2 else
                       (int(rng.integers(0, 3)), int(rng.integers(0, 8)), 1))  # 3 hot addresses
    assert _run_lane(updates, weights, transparent=transparent) == _reference(updates, weights)


def test_multiplying_lane_back_to_back():
    weights = [3, -5, 7, 1, -127, 127, 2, -2]
    updates = [(1, k % 8, (k * 37) % 15 - 7) for k in range(16)] + [(2, 5, 7), (2, 4, -8), (1, 0, 1)]
    assert _run_lane(updates, weights, signed(4)) == _reference(updates, weights)


def test_walker_covers_each_fan_out_once_per_cycle():
    params = random_network(11, with_pool=True)
    plan = make_plan(params, 2)
    target = plan.layers[1].target
    dut = FanOutWalker(target, unsigned(1))
    c_in, h_in, w_in = target.in_shape
    events = [(c, y, x) for c in range(c_in) for y in range(h_in) for x in range(w_in)]
    seen = []

    async def tb(ctx):
        ctx.set(dut.events.valid, 1)
        index = 0
        ctx.set(dut.events.payload, {"c": 0, "y": 0, "x": 0, "value": 1})
        async for _clk, _rst, ready, valid, payload in ctx.tick().sample(
                dut.events.ready, dut.updates.valid, dut.updates.payload):
            if valid:
                seen.append(int(payload.group))
            if ready:
                index += 1
                if index == len(events):
                    ctx.set(dut.events.valid, 0)
                    if len(seen) == int(target.fan_out_cycles.sum()):
                        return
                else:
                    c, y, x = events[index]
                    ctx.set(dut.events.payload, {"c": c, "y": y, "x": x, "value": 1})
            if index >= len(events) and not valid:
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(seen) == int(target.fan_out_cycles.sum())


def _replay(words, lanes, push_gaps, ready_pattern):
    """Push ``words`` (group, y, x, mask) with ``push_gaps`` idle cycles before each, while the
    consumer takes events when ``ready_pattern`` (cycled) says so; return the events in order."""
    from amaranth.lib import data

    word_layout = data.StructLayout({"group": 2, "y": 3, "x": 3, "mask": lanes})
    event = data.StructLayout({"c": 5, "y": 3, "x": 3, "value": 1})
    dut = SpikeBuffer(word_layout, 32, lanes, event)
    got = []

    async def producer(ctx):
        for gap, (g, y, x, mask) in zip(push_gaps, words):
            if gap:
                await ctx.tick().repeat(gap)
            ctx.set(dut.push.valid, 1)
            ctx.set(dut.push.payload, {"group": g, "y": y, "x": x, "mask": mask})
            await ctx.tick()
            ctx.set(dut.push.valid, 0)

    async def consumer(ctx):
        ctx.set(dut.enable, 1)
        expected = sum(bin(w[3]).count("1") for w in words)
        cycle = 0
        while len(got) < expected and cycle < 2000:
            ctx.set(dut.events.ready, ready_pattern[cycle % len(ready_pattern)])
            _, _, valid, ready, payload = await ctx.tick().sample(dut.events.valid, dut.events.ready,
                                                                 dut.events.payload)
            if valid and ready:
                got.append((int(payload.c), int(payload.y), int(payload.x)))
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return got


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_spike_buffer_replays_every_spike_in_order(draw):
    """Words pushed with random gaps (also while replaying) come out one spike per handshake, in
    push order, lowest lane first: the plain loop over the words is the reference."""
    lanes = draw.draw(st.sampled_from([1, 2, 4, 8]))
    word = st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 7), st.integers(1, (1 << lanes) - 1))
    words = draw.draw(st.lists(word, min_size=1, max_size=12))
    gaps = draw.draw(st.lists(st.integers(0, 3), min_size=len(words), max_size=len(words)))
    ready = draw.draw(st.lists(st.booleans(), min_size=1, max_size=5).filter(any))
    reference = [(g * lanes + lane, y, x) for g, y, x, mask in words for lane in range(lanes) if mask >> lane & 1]
    assert _replay(words, lanes, gaps, ready) == reference
