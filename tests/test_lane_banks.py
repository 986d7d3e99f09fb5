"""rtl_gen.lane_banks: one memory per lane, lane-selected reads and writes, a clear of every bank at once."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_hw.rtl_gen.lane_banks import LaneBankedMemory


def make(banks: int, depth: int, lane_bits: int | None = None):
    m = Module()
    clear_en, clear_addr = Signal(), Signal(8)
    memory = LaneBankedMemory(name="words", shape=unsigned(6), banks=banks, depth=depth,
                              lane_bits=lane_bits if lane_bits is not None else max(1, (banks - 1).bit_length()),
                              clear_en=clear_en, clear_addr=clear_addr, clear_value=5)
    memory.add_to(m)
    return m, memory, clear_en, clear_addr


@settings(max_examples=15, deadline=None)
@given(banks=st.integers(1, 4), depth=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_reads_and_writes_match_a_plain_model(banks, depth, seed):
    """Random writes and reads per cycle against a dict of (lane, word): a read returns the word as it was
    before that cycle's write (registered, not transparent); the clear writes clear_value everywhere."""
    rng = np.random.default_rng(seed)
    m, memory, clear_en, clear_addr = make(banks, depth)
    model = {(lane, word): 0 for lane in range(banks) for word in range(depth)}
    steps = [(int(rng.integers(banks)), int(rng.integers(depth)), int(rng.integers(64)), bool(rng.integers(2)),
              int(rng.integers(banks)), int(rng.integers(depth))) for _ in range(40)]
    seen = []

    async def tb(ctx):
        for write_lane, write_addr, data, enable, read_lane, read_addr in steps:
            ctx.set(memory.write_lane, write_lane)
            ctx.set(memory.write_addr, write_addr)
            ctx.set(memory.write_data, data)
            ctx.set(memory.write_en, enable)
            ctx.set(memory.read_addr, read_addr)
            await ctx.tick()
            ctx.set(memory.read_lane, read_lane)
            seen.append(ctx.get(memory.read_data))
        ctx.set(memory.write_en, 0)
        ctx.set(clear_en, 1)
        for address in range(depth):
            ctx.set(clear_addr, address)
            await ctx.tick()
        ctx.set(clear_en, 0)
        await ctx.tick()
        for lane in range(banks):
            for word in range(depth):
                assert ctx.get(memory.memories[lane].data[word]) == 5

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    expected = []
    for write_lane, write_addr, data, enable, read_lane, read_addr in steps:
        expected.append(model[read_lane, read_addr])
        if enable:
            model[write_lane, write_addr] = data
    assert seen == expected


def test_parameters_are_checked():
    with pytest.raises(ValueError, match="LaneBankedMemory: banks must be at least 1, not 0"):
        make(0, 4, 1)
    with pytest.raises(ValueError, match="LaneBankedMemory: lane_bits must be at least 2, not 1"):
        make(4, 4, 1)
    _, memory, _, _ = make(3, 5)
    assert len(memory.read_lane) == 2 and len(memory.write_addr) == 3
