"""Network bench (issue 7 part 3) for radix parameter files (binary-coded IF neurons, ``ecc_hw.radix``)
on Icarus and Verilator: the bundled architecture trained with L = 16 (``qcfs16`` fixture) converted
by ``--method radix`` at T = 4, and a small random radix network under idle gaps and back-pressure.
Every spike of every layer at every step, the output membranes, the prediction and the cycle count
(stalls subtracted) must equal the golden model and the cycle model; a flipped low-order spike must
fail the bench."""
import numpy as np
import pytest

from ecc_hw import data, golden, radix
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.testing import random_inputs, random_radix_network
from ecc_hw.sim.check import VerificationFailed
from ecc_hw.sim.network_tb import Stimulus
from ecc_hw.sim.verify import verify

STIMULUS = Stimulus(seed=5, idle=64, stall=80)


@pytest.fixture(scope="session")
def qcfs16_radix():
    x, _ = data.load_npz(data.BUNDLED_CALIB, need_labels=False)
    return convert(data.PACKAGE_DATA / "methods" / "qcfs16.onnx", x, ConvertOptions(method="radix", timesteps=4),
                   calibration_source="mnist_calib.npz")


# Verilator: 5 digits at P = 8 (~80k cycles each); Icarus (~10k cycles/s): 2 digits at P = 16 (~43k each).
@pytest.mark.parametrize("simulator,lanes,count", [("verilator", 8, 5), ("icarus", 16, 2)])
def test_radix_fixture_network_bench(simulator, lanes, count, qcfs16_radix, bench_cache):
    net = qcfs16_radix
    assert net.method == "radix" and net.timesteps == 4
    test_x, _ = data.load_npz(data.BUNDLED_TEST, input_shape=net.input_shape)
    x_q = golden.quantize_input(net, test_x[:count])
    ann, _ = radix.quantised_ann(net, x_q)
    bench = bench_cache.get(net, simulator, lanes, 4, "qcfs16-radix")
    report = verify(net, x_q, simulator, lanes, 4, STIMULUS, bench=bench)
    assert report["ok"] and report["spike_mismatches"] == 0 and report["prediction_mismatches"] == 0
    assert report["membrane_mismatches"] == 0 and report["cycle_mismatches"] == 0
    assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
    assert report["predictions"] == np.argmax(ann, axis=1).tolist()     # the quantised ANN's, exactly
    assert sum(report["input_stall_cycles"]) > 0 and sum(report["output_stall_cycles"]) > 0


def _random_radix(simulator, bench_cache):
    params = random_radix_network(1, timesteps=4, with_pool=True, conv_layers=2, signed=True)
    return params, bench_cache.get(params, simulator, 2, 4, "random-radix1")


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_radix_random_network_bench(simulator, bench_cache):
    params, bench = _random_radix(simulator, bench_cache)
    x_q = random_inputs(params, 5, 101)
    x_q[1].reshape(-1)[::3] = 0
    x_q[2][:] = 0
    for stimulus in (Stimulus(1, 0, 0), Stimulus(3, 250, 200)):
        report = verify(params, x_q, simulator, 2, 4, stimulus, bench=bench)
        assert report["ok"], report["first_mismatch"]
        assert report["cycles_per_image"] == report["predicted_cycles_per_image"]


def test_radix_bench_fails_on_one_flipped_least_significant_bit(bench_cache):
    params, bench = _random_radix("icarus", bench_cache)
    x_q = random_inputs(params, 3, 102)
    ref = golden.run(params, x_q, record_spikes=True)
    image, neuron = (int(v) for v in np.argwhere(ref.spikes[0][-1])[0])  # a spike of layer 1's last bit

    def flip(expected):
        expected.spikes[0][-1, image, neuron] = False

    with pytest.raises(VerificationFailed) as failure:
        verify(params, x_q, "icarus", 2, 4, STIMULUS, mutate=flip, bench=bench, waves_on_mismatch=False)
    report = failure.value.report
    assert report["spike_mismatches"] == 1
    assert report["first_mismatch"] == {"image": image, "kind": "spike", "layer": 1, "timestep": 4,
                                        "neuron": neuron, "expected": 0, "got": 1}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_radix_network_bench_with_spram_banks(simulator, bench_cache):
    """Radix files as the iCEBreaker builds them: single-port SPRAM banks at half rate."""
    params = random_radix_network(3, timesteps=3, with_pool=True, conv_layers=2)
    x_q = random_inputs(params, 4, 103)
    x_q[2][:] = 0
    bench = bench_cache.get(params, simulator, 1, 3, "random-radix3-spram", memory="spram")
    assert bench.build.design.manifest["memory"] == "spram"
    assert bench.build.design.manifest["coding"] == "binary"
    for stimulus in (Stimulus(1, 0, 0), Stimulus(4, 128, 128)):
        report = verify(params, x_q, simulator, 1, 3, stimulus, bench=bench)
        assert report["ok"], report["first_mismatch"]
        assert report["cycles_per_image"] == report["predicted_cycles_per_image"]
