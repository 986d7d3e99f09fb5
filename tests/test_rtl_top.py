"""The whole design in the Amaranth simulator against the golden model and the cycle model."""
import numpy as np
import pytest

from ecc_hw import golden
from ecc_hw.cycle_model import cycles_per_image
from ecc_hw.testing import (random_event_inputs, random_event_network, random_inputs, random_network,
                            random_radix_network)
from ecc_hw.rtl_gen.plan import make_plan
from ecc_hw.rtl_gen.simulate import run_images

# (seed, lanes, tre_mode, with_pool, conv_layers, signed input, timesteps)
CASES = [
    (1, 1, "spread", True, 2, False, 6),
    (2, 2, "spread", True, 2, False, 5),
    (3, 4, "initial", True, 2, False, 4),
    (4, 2, "initial", False, 1, True, 6),
    (5, 4, "spread", False, 3, False, 4),
    (6, 1, "initial", True, 1, True, 5),
    (7, 8, "spread", True, 2, False, 4),
    (11, 2, "spread", True, 2, True, 3),
]


def assert_sim_equals_models(sim, ref, params, lanes, x_q):
    """Every spike, output membrane and prediction equal the golden model's, cycles the cycle model's."""
    for n, (got, want) in enumerate(zip(sim.spikes, ref.spikes)):
        assert np.array_equal(got, want), f"layer {n + 1}: spikes differ"
    assert np.array_equal(sim.output_membrane, ref.output_membrane)
    assert np.array_equal(sim.predictions, ref.predictions)
    assert np.array_equal(sim.cycles, cycles_per_image(params, ref, lanes, x_q=x_q))


@pytest.mark.parametrize("seed,lanes,tre_mode,with_pool,conv_layers,signed,timesteps", CASES)
def test_design_matches_golden_and_cycle_model(seed, lanes, tre_mode, with_pool, conv_layers,
                                               signed, timesteps):
    params = random_network(seed, timesteps=timesteps, with_pool=with_pool, conv_layers=conv_layers,
                            signed=signed, tre_mode=tre_mode)
    x_q = random_inputs(params, 2, seed + 100)
    x_q[1].reshape(-1)[::3] = 0                      # zero pixels take the 1-cycle path
    ref = golden.run(params, x_q, record_spikes=True)
    sim = run_images(make_plan(params, lanes), x_q, trace=True)
    assert_sim_equals_models(sim, ref, params, lanes, x_q)


def test_without_trace_predictions_and_membranes():
    params = random_network(3, timesteps=4)
    x_q = random_inputs(params, 2, 9)
    ref = golden.run(params, x_q, record_spikes=True)
    sim = run_images(make_plan(params, 2), x_q, trace=False)
    assert sim.spikes is None
    assert np.array_equal(sim.output_membrane, ref.output_membrane)
    assert np.array_equal(sim.predictions, ref.predictions)
    assert np.array_equal(sim.cycles, cycles_per_image(params, ref, 2, x_q=x_q))


def test_argmax_ties_pick_the_lowest_index():
    params = random_network(2, timesteps=3)
    out = params.layers[-1]
    out.weight[:] = 0
    out.bias[:] = 5                                  # every class ties
    out.bias[0] = 4
    x_q = random_inputs(params, 1, 1)
    sim = run_images(make_plan(params, 2), x_q, trace=False)
    assert sim.predictions.tolist() == [1]
    assert sim.output_membrane.tolist() == [[12, 15, 15, 15]]


@pytest.mark.parametrize("seed", range(20, 30))
def test_more_random_networks(seed):
    rng = np.random.default_rng(seed)
    lanes = int(rng.choice([1, 2, 4]))
    params = random_network(seed, timesteps=int(rng.integers(1, 6)), with_pool=bool(rng.random() < 0.7),
                            conv_layers=int(rng.integers(1, 4)), signed=bool(rng.random() < 0.3),
                            tre_mode=str(rng.choice(["spread", "initial"])))
    x_q = random_inputs(params, 1, seed)
    ref = golden.run(params, x_q, record_spikes=True)
    sim = run_images(make_plan(params, lanes), x_q, trace=True)
    for got, want in zip(sim.spikes, ref.spikes):
        assert np.array_equal(got, want)
    assert np.array_equal(sim.output_membrane, ref.output_membrane)
    assert np.array_equal(sim.cycles, cycles_per_image(params, ref, lanes, x_q=x_q))


def test_bundled_network_matches_golden_in_the_amaranth_simulator():
    """The bundled MNIST network itself (converted for T = 2 to keep the pure-Python simulation
    to seconds: ~8k cycles per image at P = 16) for two test digits, spike by spike."""
    from ecc_hw import convert, data

    calibration, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    params = convert.convert(data.BUNDLED_MODEL, calibration, convert.ConvertOptions(timesteps=2))
    test, _ = data.load_npz(data.BUNDLED_TEST)
    x_q = golden.quantize_input(params, test[:2])
    ref = golden.run(params, x_q, record_spikes=True)
    assert all(s.any() for s in ref.spikes)          # every layer spikes: a real check
    sim = run_images(make_plan(params, 16), x_q, trace=True)
    assert_sim_equals_models(sim, ref, params, 16, x_q)


@pytest.mark.parametrize("lanes", [4, 16])
def test_pool_layers_match_golden_in_the_amaranth_simulator(lanes):
    """The bundled network converted with --pool layer (each average pool its own spiking layer,
    walked as a 1x1 conv with diagonal weights: 5 layers), T = 2, two digits, spike by spike."""
    from ecc_hw import convert, data

    calibration, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    params = convert.convert(data.BUNDLED_MODEL, calibration, convert.ConvertOptions(timesteps=2, pool_mode="layer"))
    assert [layer.kind for layer in params.layers] == ["conv", "pool", "conv", "pool", "dense"]
    test, _ = data.load_npz(data.BUNDLED_TEST)
    x_q = golden.quantize_input(params, test[:2])
    ref = golden.run(params, x_q, record_spikes=True)
    assert all(s.any() for s in ref.spikes)
    sim = run_images(make_plan(params, lanes), x_q, trace=True)
    assert_sim_equals_models(sim, ref, params, lanes, x_q)


RADIX_CASES = [  # seed, lanes, with_pool, conv_layers, signed input, T (bits)
    (1, 2, True, 2, True, 4), (2, 4, True, 3, False, 3), (5, 8, False, 3, True, 4),
    (11, 1, True, 2, False, 2), (3, 2, False, 1, False, 1), (14, 4, True, 3, False, 5)]


@pytest.mark.parametrize("seed,lanes,with_pool,conv_layers,signed,timesteps", RADIX_CASES)
def test_radix_design_matches_golden_and_cycle_model(seed, lanes, with_pool, conv_layers, signed, timesteps):
    params = random_radix_network(seed, timesteps=timesteps, with_pool=with_pool, conv_layers=conv_layers,
                                  signed=signed)
    x_q = random_inputs(params, 2, seed + 100)
    x_q[1].reshape(-1)[::3] = 0
    ref = golden.run(params, x_q, record_spikes=True)
    assert all(0 < s.mean() < 1 for s in ref.spikes)      # every layer's bits vary: a real check
    sim = run_images(make_plan(params, lanes), x_q, trace=True)
    assert_sim_equals_models(sim, ref, params, lanes, x_q)


def test_radix_membranes_reach_their_bounds_without_overflow():
    """Worst case: every weight and bias at full scale, theta = 1, full-scale input: every spiking
    neuron fires all T bits and the output membranes reach -bound exactly (the bound is tight), in
    widths of signed_bits_for(bound); the hardware still agrees with the golden model."""
    from ecc_hw import radix
    from ecc_hw.rtl_gen.plan import signed_bits_for

    params = random_radix_network(2, timesteps=4, with_pool=True, conv_layers=3)
    wmax = (1 << (params.weight_bits - 1)) - 1
    for layer in params.spiking_layers:
        layer.weight[:], layer.bias[:], layer.threshold = wmax, wmax, 1
    params.layers[-1].weight[:], params.layers[-1].bias[:] = -wmax, -wmax
    x_q = np.full((1, *params.input_shape), params.input_full_scale, dtype=np.int64)
    bounds = radix.membrane_bounds(params, 4)
    ref = golden.run(params, x_q, record_spikes=True)
    assert all(s.all() for s in ref.spikes)
    assert ref.output_membrane.tolist() == [[-bounds[-1]] * params.layers[-1].neurons]
    plan = make_plan(params, 2)
    assert [layer.membrane_width for layer in plan.layers] == [signed_bits_for(b) for b in bounds]
    sim = run_images(plan, x_q, trace=True)
    for got, want in zip(sim.spikes, ref.spikes):
        assert np.array_equal(got, want)
    assert np.array_equal(sim.output_membrane, ref.output_membrane)


# --- event input (rtl_gen.event_input): layer 1 integrates input events frame by frame
EVENT_CASES = [  # seed, lanes, tre_mode, with_pool, conv_layers, count_scale, T
    (3, 2, "spread", True, 2, 3, 5),
    (5, 1, "initial", True, 1, 1, 4),          # count_scale 1: one-bit counts, no multiplier
    (37, 4, "spread", True, 3, 5, 4),
    (9, 1, "spread", False, 2, 4, 6),
    (11, 8, "initial", False, 2, 16, 3),
]


@pytest.mark.parametrize("seed,lanes,tre_mode,with_pool,conv_layers,count_scale,timesteps", EVENT_CASES)
def test_event_design_matches_golden_and_cycle_model(seed, lanes, tre_mode, with_pool, conv_layers,
                                                     count_scale, timesteps):
    params = random_event_network(seed, count_scale=count_scale, timesteps=timesteps, tre_mode=tre_mode,
                                  with_pool=with_pool, conv_layers=conv_layers)
    x_q = random_event_inputs(params, 3, seed + 100)
    x_q[0, 1] = 0                                    # an empty frame: its marker alone
    x_q[1, -1] = count_scale                         # a full frame at the largest count
    x_q[2] = 0                                       # no events at all: bias and TRE only
    ref = golden.run(params, x_q, record_spikes=True)
    assert all(0 < s[:, :2].mean() < 1 for s in ref.spikes)   # every layer's spikes vary: a real check
    plan = make_plan(params, lanes)
    assert plan.events and plan.current_width == 0
    sim = run_images(plan, x_q, trace=True)
    assert_sim_equals_models(sim, ref, params, lanes, x_q)


def test_event_counts_may_come_as_repeated_words():
    """A pixel's count split over several words (or repeated count-1 events, as a sensor sends them)
    and zero-count words give the same spikes and membranes; each extra word is an extra event."""
    from ecc_hw.rtl_gen.event_input import event_word_layout, field_offsets, frame_words, pack_words
    from ecc_hw.rtl_gen.simulate import run_words

    params = random_event_network(1, count_scale=3, timesteps=5)
    x_q = random_event_inputs(params, 1, 4)
    ref = golden.run(params, x_q, record_spikes=True)
    words = frame_words(x_q[0])
    split = []
    for c, y, x, count, end in words:
        split += [[c, y, x, 1, 0]] * count if not end else [[c, y, x, 0, 0], [0, 0, 0, 0, 1]]
    plan = make_plan(params, 2)
    stream = pack_words(np.array(split), field_offsets(event_word_layout(plan)))
    sim = run_words(plan, [stream], trace=True)
    for got, want in zip(sim.spikes, ref.spikes):
        assert np.array_equal(got, want)
    assert np.array_equal(sim.output_membrane, ref.output_membrane)
    assert sim.cycles[0] > cycles_per_image(params, ref, 2, x_q=x_q)[0]


def test_event_membranes_reach_their_bounds_without_overflow():
    """Worst case for layer 1: full-scale weights of one sign, every pixel at count_scale in every
    frame, theta larger than anything reachable: the membranes move by the bound's Zmax each step
    in widths of signed_bits_for(bound), and the hardware still agrees with the golden model."""
    from ecc_hw.rtl_gen.plan import signed_bits_for

    params = random_event_network(2, count_scale=7, timesteps=4, with_pool=False, conv_layers=1)
    wmax = (1 << (params.weight_bits - 1)) - 1
    first = params.layers[0]
    first.weight[:], first.bias[:], first.tre_charge = -wmax, -wmax, 0
    x_q = np.full((1, 4, *params.input_shape), 7, dtype=np.int64)
    bounds = golden.membrane_bounds(params, 4)
    plan = make_plan(params, 2)
    assert plan.layers[0].membrane_width == signed_bits_for(bounds[0])
    ref = golden.run(params, x_q, record_spikes=True)
    sim = run_images(plan, x_q, trace=True)
    for got, want in zip(sim.spikes, ref.spikes):
        assert np.array_equal(got, want)
    assert np.array_equal(sim.output_membrane, ref.output_membrane)


def test_event_input_through_a_pool_composed_into_layer_1():
    """An input pool composed into layer 1 (3x3 cells, stride 2, the last row and column cropped):
    events of cropped pixels are no-ops, the others reach every cell that contains them."""
    from ecc_hw.params import Pool, QuantLayer

    params = random_event_network(9, count_scale=4, timesteps=4)
    rng = np.random.default_rng(0)
    conv = QuantLayer(kind="conv", input_shape=(2, 8, 8), output_shape=(3, 3, 3),
                      weight=rng.integers(-31, 32, (3, 2, 2, 2)), bias=rng.integers(-20, 20, 3),
                      threshold=60, tre_charge=30, pool=Pool((3, 3), (2, 2)), kernel=(2, 2),
                      padding=(1, 1, 0, 0), nominal_fan_in=8, name="conv1")
    dense = QuantLayer(kind="dense", input_shape=(3, 3, 3), output_shape=(4, 1, 1),
                       weight=rng.integers(-31, 32, (4, 27)), bias=rng.integers(-5, 5, 4), threshold=None,
                       tre_charge=None, nominal_fan_in=27, name="dense")
    params.layers, params.input_shape, params.lambdas = [conv, dense], (2, 8, 8), [1.0, 1.0, 1.0]
    params.events.update(sensor=[8, 8], size=[8, 8])
    x_q = random_event_inputs(params, 2, 3, density=0.5)
    ref = golden.run(params, x_q, record_spikes=True)
    assert 0 < ref.spikes[0].mean() < 1
    sim = run_images(make_plan(params, 2), x_q, trace=True)
    assert np.array_equal(sim.spikes[0], ref.spikes[0])
    assert np.array_equal(sim.output_membrane, ref.output_membrane)
    assert np.array_equal(sim.cycles, cycles_per_image(params, ref, 2, x_q=x_q))
