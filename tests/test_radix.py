"""The binary-coded (radix) IF golden model: exact against the quantised ANN."""

import numpy as np
import pytest

from ecc_hw import convert, methods, radix
from ecc_hw.arithmetic import quantize_input
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_TEST, PACKAGE_DATA
from ecc_hw.params import NetworkParams
from ecc_hw.passes import FloatLayer
from ecc_hw.testing import random_inputs, random_network


@pytest.mark.parametrize("seed", range(6))
def test_bit_serial_neuron_equals_clip_floor(seed):
    # Any integers: the spike bits of every layer are the binary digits of clip(floor(V/theta), 0, 2^T-1).
    net = random_network(seed, timesteps=int(1 + seed % 5))
    net.method = "radix"
    x_q = random_inputs(net, 7, seed)
    result = radix.run(net, x_q, record_spikes=True)
    output, levels = radix.quantised_ann(net, x_q)
    assert np.array_equal(result.output_membrane, output)
    weights = 1 << np.arange(net.timesteps - 1, -1, -1)
    for spikes, q in zip(result.spikes, levels):
        assert np.array_equal(np.tensordot(weights, spikes.astype(np.int64), axes=1), q)
    assert np.array_equal(result.spike_counts.sum(axis=1),
                          sum(np.vectorize(lambda v: bin(int(v)).count("1"))(q).sum(axis=1) for q in levels))


def exact_network(seed, timesteps=4):
    """conv -> conv (with a composed 2x2 pool) -> dense whose float QCFS activations are exact.

    Steps D_n = 1 (lambda_0 = 255 with u = 255, lambda_n = L - 1): weights k/128 with max |k| = 127
    give theta = floor(127 / (127/128)) = 128 and Wq = k; biases m/128 - 1/2 + 1/512 give
    bq = rint(m + 1/4) = m; every float is a short binary fraction, so floor(z/D + 1/2) is exact.
    """
    rng = np.random.default_rng(seed)
    levels = (1 << timesteps) - 1

    def weights(shape, spread):
        k = rng.integers(-spread, spread + 1, size=shape)
        k.flat[rng.integers(k.size)] = 127
        return k / 128.0

    def biases(n):
        return rng.integers(-200, 200, size=n) / 128.0 - 0.5 + 1 / 512

    conv1 = FloatLayer("conv", "c1", (2, 6, 6), (3, 6, 6), weights((3, 2, 3, 3), 12), biases(3),
                       kernel=(3, 3), padding=(1, 1, 1, 1), nominal_fan_in=18, relu=True, clip=float(levels))
    from ecc_hw.params import Pool
    conv2 = FloatLayer("conv", "c2", (3, 6, 6), (4, 3, 3), weights((4, 3, 2, 2), 15), biases(4),
                       kernel=(2, 2), padding=(1, 1, 0, 0), pool=Pool((2, 2), (2, 2)), nominal_fan_in=12,
                       relu=True, clip=float(levels))
    dense = FloatLayer("dense", "fc", (4, 3, 3), (5, 1, 1), weights((5, 36), 20), rng.integers(-99, 99, 5) / 128.0,
                       nominal_fan_in=36)
    layers = [conv1, conv2, dense]
    lambdas = [255.0, float(levels), float(levels), 1.0]
    options = ConvertOptions(method="radix", timesteps=timesteps)
    quantised = methods.quantize_radix(layers, lambdas, False, options)
    net = NetworkParams((2, 6, 6), 8, False, 8, timesteps, 0.0, 1.0, quantised, lambdas, method="radix")
    x = rng.integers(0, 4, size=(64, 2, 6, 6))
    return net, x


@pytest.mark.parametrize("seed", range(4))
def test_radix_exact_on_a_network_with_exactly_representable_activations(seed):
    net, x = exact_network(seed)
    assert [layer.threshold for layer in net.spiking_layers] == [128, 128]
    result = radix.run(net, quantize_input(net, x), record_spikes=True)
    logits, float_levels = radix.qcfs_forward(net, x.astype(np.float64))
    weights = 1 << np.arange(net.timesteps - 1, -1, -1)
    for spikes, q in zip(result.spikes, float_levels):
        assert np.array_equal(np.tensordot(weights, spikes.astype(np.int64), axes=1), q)
        assert 0 < q.mean() < (1 << net.timesteps) - 1  # not all silent, not all saturated
    assert np.array_equal(result.output_membrane, np.rint(128 * logits).astype(np.int64))
    assert np.array_equal(result.predictions, np.argmax(logits, axis=1))


def test_radix_fixture_at_t4_equals_its_quantised_ann_on_the_bundled_test_set():
    # The committed QCFS (L = 16) model: radix at T = 4 predicts like the QCFS ANN on every image.
    calibration = np.load(BUNDLED_CALIB)["x"]
    test = np.load(BUNDLED_TEST)
    net = convert.convert(PACKAGE_DATA / "methods" / "qcfs16.onnx", calibration,
                          ConvertOptions(method="radix", timesteps=4))
    x_q = quantize_input(net, test["x"])
    result = radix.run(net, x_q)
    ann_int, _ = radix.quantised_ann(net, x_q)
    assert np.array_equal(result.output_membrane, ann_int)
    logits, _ = radix.qcfs_forward(net, test["x"])
    assert np.array_equal(result.predictions, np.argmax(logits, axis=1))
    from ecc_hw import cnn, evaluate
    cnn_accuracy = np.mean(np.argmax(cnn.forward(evaluate.cnn_layers(net), test["x"]), axis=1) == test["y"])
    assert abs(np.mean(result.predictions == test["y"]) - cnn_accuracy) <= 0.01


def test_radix_rejects_other_parameter_files():
    net = random_network(0)
    with pytest.raises(ValueError, match="not radix"):
        radix.run(net, random_inputs(net, 1, 0))
