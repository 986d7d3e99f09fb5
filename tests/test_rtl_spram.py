"""SPRAM layout (rtl_gen/spram_layout.py) and the iCEBreaker fit of the bundled network."""
import pytest

from ecc_hw.boards.fit import FitError, fit_check, predict
from ecc_hw.boards.targets import BOARDS
from ecc_hw import data
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.testing import random_network
from ecc_hw.rtl_gen.errors import HardwareError
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.rtl_gen.spram_layout import SPRAM_WORDS, SpramStack

ICE = BOARDS["icebreaker"]


@pytest.fixture(scope="module")
def mnist():
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    return convert(data.BUNDLED_MODEL, x, ConvertOptions(timesteps=32), calibration_source="mnist_calib.npz")


def test_fields_are_nibble_aligned_and_regions_stacked():
    stack = SpramStack("state")
    first = stack.add("a", 100, [("m", 0, 17), ("m", 1, 17), ("c", 0, 3)])
    second = stack.add("b", 50, [("m", 0, 20)])
    assert [(f.bit, f.width) for f in first.fields] == [(0, 17), (20, 17), (40, 3)]
    assert (first.offset, second.offset, stack.depth) == (0, 100, 150)
    assert (stack.width, stack.columns) == (43, 3)
    assert first.field("m", 1).bit == 20 and stack.region("b") is second


def test_mnist_p1_fits_the_icebreaker_with_spram(mnist):
    plan = make_plan(mnist, 1, 32, "spram")
    state, spikes = plan.spram.state, plan.spram.spikes
    assert [r.name for r in state.regions] == ["layer1", "layer2", "layer3"]
    assert (state.width, state.columns, state.depth) == (43, 3, 6272 + 3136 + 10)   # 24 + 19 bits
    assert (spikes.columns, spikes.depth) == (1, 6272 + 3136)
    assert plan.clear_depth == state.depth and plan.issue_interval == 2
    kinds = {m["name"]: m["kind"] for m in plan.memories()}
    assert kinds["layer1_membrane"] == kinds["layer1_current"] == kinds["layer2_spike_buffer"] == "spram"
    assert kinds["layer3_weights"] == "rom"
    fit = fit_check(ICE, plan)
    assert (fit["bram"], fit["spram"]) == (22, 4)                  # weights 1 + 3 + 16, UART buffer 2
    assert fit["spram_bits"] == plan.spram.bits and fit["memory_bits"] == fit["bram_bits"] + fit["spram_bits"]


def test_mnist_p2_is_refused_on_spram(mnist):
    with pytest.raises(FitError, match=r"at 2 lanes: SPRAM needs 7 of 4 blocks \(state word 87 bits"):
        fit_check(ICE, make_plan(mnist, 2, 32, "spram"))


def test_a_stack_deeper_than_one_spram_is_refused():
    plan = make_plan(random_network(3), 1, memory="spram")
    plan.spram.state.add("extra", SPRAM_WORDS, [("x", 0, 8)])
    with pytest.raises(FitError, match=r"SPRAM state stack needs [\d,]+ of 16,384 words"):
        fit_check(ICE, plan)
    assert predict(ICE, plan)["spram"] == plan.spram.blocks


def test_memory_option_is_checked():
    with pytest.raises(HardwareError, match="memory must be bram or spram, got 'dram'"):
        make_plan(random_network(3), 1, memory="dram")
