"""The cycle model's pieces (its equality with simulation is tested in test_rtl_top.py)."""
import numpy as np
import pytest

from ecc_hw import golden
from ecc_hw.cycle_model import (FIRE_OVERHEAD, SPRAM_FIRE_OVERHEAD, fire_overhead, FRAME_ENTRY,
                                LANE_DRAIN, SPRAM_LANE_DRAIN, integration_end, overlapped_integration_end, constants,
                                cycles_per_image, ideal_cycles, issue_interval, lane_drain, sweep_order, sweep_words,
                                walk_cycles)
from ecc_hw.linear import LinearMap
from ecc_hw.testing import random_event_inputs, random_event_network, random_inputs, random_network


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
def test_walk_cycles_times_lanes_cover_the_fan_out(seed, lanes):
    params = random_network(seed, with_pool=True, conv_layers=1 + seed % 3)
    for layer in params.layers:
        fan_out = LinearMap.of(layer).fan_out()
        walk = walk_cycles(layer, lanes)
        assert np.all(walk * lanes >= fan_out)
        if lanes == 1:
            assert np.array_equal(walk, fan_out)


def test_sweep_order_is_group_position_lane():
    layer = random_network(3).layers[0]
    channels, h, w = layer.output_shape
    order = sweep_order(layer, 2)
    assert sorted(order.tolist()) == list(range(channels * h * w))
    keys = [((i // (h * w)) // 2, i % (h * w), (i // (h * w)) % 2) for i in order]
    assert keys == sorted(keys)


def test_integration_phase_timing():
    assert integration_end(10, np.array([], dtype=np.int64)) == 10
    assert integration_end(10, np.array([0, 0])) == 12                 # two no-ops, one cycle each
    assert integration_end(10, np.array([3])) == 10 + 3 + LANE_DRAIN
    assert integration_end(10, np.array([2, 0])) == 12 + 1 + 0 + max(0, LANE_DRAIN - 1)


def test_overlapped_integration_timing():
    """Events offered while the sweep runs: each waits for its offer or for the walker."""
    assert overlapped_integration_end(50, np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == 50
    # offered early, short walks: the sweep's end decides
    assert overlapped_integration_end(50, np.array([10, 12]), np.array([2, 3])) == 50
    # offered at 40 and 41, walks 9 and 4: the second waits for the walker (40 + 9), then drains
    assert overlapped_integration_end(50, np.array([40, 41]), np.array([9, 4])) == 49 + 4 + LANE_DRAIN
    # a late offer after the walker is free
    assert overlapped_integration_end(50, np.array([40, 60]), np.array([2, 0])) == 61


def test_integration_phase_timing_single_port():
    """SPRAM banks: one update every 2 cycles; the last of L updates is issued 2L - 1 cycles after
    the event is accepted, the next event is accepted 2L cycles after it."""
    assert integration_end(10, np.array([0, 0]), 2) == 12                  # no-ops still cost one cycle
    assert integration_end(10, np.array([3]), 2) == 10 + 5 + SPRAM_LANE_DRAIN
    assert integration_end(10, np.array([3, 1]), 2) == 10 + 6 + 1 + SPRAM_LANE_DRAIN
    assert integration_end(10, np.array([2, 0]), 2) == 10 + 3 + SPRAM_LANE_DRAIN      # the drain outlasts the no-op


def test_spram_schedule_costs():
    params = random_network(4, timesteps=3)
    x_q = random_inputs(params, 2, 1)
    ref = golden.run(params, x_q, record_spikes=True)
    bram, spram = constants(params, 2), constants(params, 2, "spram")
    words = [sweep_words(layer, 2) for layer in params.layers]
    assert bram["clear_cycles"] == max(words) and spram["clear_cycles"] == sum(words)
    assert (bram["issue_interval"], spram["issue_interval"]) == (1, 2)
    slow = cycles_per_image(params, ref, 2, x_q=x_q, memory="spram")
    fast = cycles_per_image(params, ref, 2, x_q=x_q)
    sweeps = 3 * sum(words[:-1])        # each sweep: 2D + SPRAM_FIRE_OVERHEAD - 1 vs D + FIRE_OVERHEAD
    assert np.all(slow - fast >= sweeps + sum(words) - max(words) - 3 * 2 * (len(words) - 1))
    assert np.all(slow < 2 * fast + sum(words)) and (FIRE_OVERHEAD, SPRAM_FIRE_OVERHEAD) == (5, 3)
    with pytest.raises(ValueError, match="memory must be one of bram, spram"):
        issue_interval("dram")


def test_ideal_matches_spec_formula():
    params = random_network(4, timesteps=5)
    x_q = random_inputs(params, 3, 1)
    ref = golden.run(params, x_q, record_spikes=True)
    first = params.layers[0]
    neurons = sum(layer.neurons for layer in params.spiking_layers)
    expect = (first.nominal_fan_in * first.neurons + ref.synops + 5 * neurons) / 4
    assert np.allclose(ideal_cycles(params, ref, 4), expect)


def test_cycle_model_needs_spikes_and_images():
    params = random_network(4, timesteps=3)
    x_q = random_inputs(params, 1, 1)
    with pytest.raises(ValueError, match="record_spikes"):
        cycles_per_image(params, golden.run(params, x_q), 2, x_q=x_q)
    with pytest.raises(ValueError, match="x_q is required"):
        cycles_per_image(params, golden.run(params, x_q, record_spikes=True), 2)



def test_integration_cost_does_not_depend_on_the_start_cycle():
    # Why one loop serves both schedules (step-major rate coding, layer-major radix).
    lengths = np.array([0, 3, 1, 0, 5])
    assert integration_end(1000, lengths) - 1000 == integration_end(7, lengths) - 7


def _silent_event_network():
    """An event network whose neurons never fire (negative weights and biases, no TRE)."""
    params = random_event_network(3, count_scale=3, timesteps=4, conv_layers=2)
    for layer in params.layers:
        layer.weight[:] = -np.abs(layer.weight)
        layer.bias[:] = -1
        if layer.spiking:
            layer.tre_charge = 0
    return params


@pytest.mark.parametrize("memory", ["bram", "spram"])
def test_event_input_schedule(memory):
    """No events and no spikes: clear, T frame markers (one cycle each), FRAME_ENTRY between frames,
    T sweeps per layer, readout. One event of walk length L in a frame adds its walk and the drain."""
    lanes, T = 2, 4
    params = _silent_event_network()
    consts = constants(params, lanes, memory)
    interval = consts["issue_interval"]
    assert consts["frame_entry"] == FRAME_ENTRY == 1
    empty = np.zeros((1, T, *params.input_shape), dtype=np.int64)
    ref = golden.run(params, empty, record_spikes=True)
    assert not any(s.any() for s in ref.spikes)
    sweeps = sum(interval * d + fire_overhead(interval) - (interval - 1) for d in consts["sweep_words"])
    readout = 1 + 3 * params.layers[-1].neurons + 1
    base = consts["clear_cycles"] + T * 1 + (T - 1) * FRAME_ENTRY + T * sweeps + readout
    assert cycles_per_image(params, ref, lanes, x_q=empty, memory=memory).tolist() == [base]
    walks = walk_cycles(params.layers[0], lanes)
    pixel = int(np.flatnonzero(walks)[0])
    one = empty.copy()
    one[0, 2].reshape(-1)[pixel] = 3
    ref = golden.run(params, one, record_spikes=True)
    assert not any(s.any() for s in ref.spikes)
    walk = int(walks[pixel])
    # the event is accepted, its last update issued interval * L - (interval - 1) cycles later and
    # drained lane_drain cycles after that; the marker waits for the walk (one cycle, overlapped)
    extra = interval * walk - (interval - 1) + lane_drain(interval) - 1
    assert cycles_per_image(params, ref, lanes, x_q=one, memory=memory).tolist() == [base + extra]


def test_event_ideal_has_no_first_layer_macs():
    params = random_event_network(3, timesteps=4)
    x_q = random_event_inputs(params, 2, 1)
    ref = golden.run(params, x_q, record_spikes=True)
    neurons = sum(layer.neurons for layer in params.spiking_layers)
    assert np.allclose(ideal_cycles(params, ref, 2), (ref.synops + 4 * neurons) / 2)


def test_cycle_model_constants_are_the_hardware_latencies():
    """The model's copies of the latencies equal what the components declare (rtl_gen.latency)."""
    from ecc_hw.cycle_model import CLASS_WORDS, OVERLAP_LATENCY, READOUT_ENTRY, READOUT_PER_NEURON
    from ecc_hw.rtl_gen import latency
    from ecc_hw.rtl_gen.controller import Controller
    from ecc_hw.rtl_gen.fire import FireSweep
    from ecc_hw.rtl_gen.readout import Readout
    from ecc_hw.rtl_gen.spike_buffer import SpikeBuffer

    assert (FIRE_OVERHEAD, SPRAM_FIRE_OVERHEAD) == (latency.fire_overhead(1), latency.fire_overhead(2))
    assert (LANE_DRAIN, SPRAM_LANE_DRAIN) == (latency.lane_drain(1), latency.lane_drain(2))
    assert [fire_overhead(i) for i in (1, 2)] == [latency.fire_overhead(i) for i in (1, 2)]
    assert [lane_drain(i) for i in (1, 2)] == [latency.lane_drain(i) for i in (1, 2)]
    assert READOUT_ENTRY == FRAME_ENTRY == Controller.STATE_CHANGE
    assert (READOUT_PER_NEURON, CLASS_WORDS) == (Readout.CYCLES_PER_NEURON, Readout.CLASS_WORDS)
    assert OVERLAP_LATENCY == FireSweep.SPIKE_LATENCY + SpikeBuffer.REPLAY_LATENCY


@pytest.mark.parametrize("memory", ["bram", "spram"])
@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("events", [False, True])
def test_cycle_model_constants_equal_the_manifests(memory, lanes, events):
    """``constants`` (the model, from the parameter file) and the generator's manifest section
    (``rtl_gen.latency.cycle_constants``, from the hardware plan) agree."""
    from ecc_hw.rtl_gen.latency import cycle_constants
    from ecc_hw.rtl_gen.plan import make_plan

    if events:
        params = random_event_network(3, timesteps=4, conv_layers=2)
    else:
        params = random_network(5, timesteps=3, with_pool=True, conv_layers=2)
    plan = make_plan(params, lanes, memory=memory)
    assert constants(params, lanes, memory) == cycle_constants(plan)
