"""The float ECC-SNN: its firing rates approach a_n / lambda_n (docs/arithmetic.md 1.5)."""
import numpy as np

from ecc_hw import cnn, convert, float_snn
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL
from ecc_hw.evaluate import cnn_layers


def test_rates_approach_normalised_activations_at_large_t():
    x = np.load(BUNDLED_CALIB)["x"][:4]
    net = convert.convert(BUNDLED_MODEL, np.load(BUNDLED_CALIB)["x"], ConvertOptions())
    _, activations = cnn.forward(cnn_layers(net), x, keep_activations=True)
    errors = []
    for steps in (64, 1024):
        result = float_snn.run(net, x, steps, record_spikes=True)
        rate = result.spikes[0].mean(axis=0)
        expected = np.clip(activations[0] / net.lambdas[1], 0, 1)
        errors.append(np.abs(rate - expected).max())
    # A soft-reset IF neuron with constant input misses its rate by at most about 1/T.
    assert errors[1] <= 2.0 / 1024 + 1e-9
    assert errors[1] < errors[0]


def test_float_snn_accumulator_gives_cnn_predictions_at_large_t():
    x = np.load(BUNDLED_CALIB)["x"][:20]
    net = convert.convert(BUNDLED_MODEL, np.load(BUNDLED_CALIB)["x"], ConvertOptions())
    logits = cnn.forward(cnn_layers(net), x)
    result = float_snn.run(net, x, 512)
    assert np.mean(result.output_membrane.argmax(1) == logits.argmax(1)) >= 0.95
