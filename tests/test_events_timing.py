"""Event input in time: what the SNN's frames add up to, and what IF neurons make of their order.

The converted event SNN sees the CNN's input spread over T frames. Its layer-1 current must
integrate to exactly the CNN's pre-activation (same counts, same unit), and an IF neuron's spike
count follows the running maximum of its summed input (docs/events.md, "Why timing matters"), which
is the arithmetic tools/train_events.py trains the event CNN for.
"""
import numpy as np
import pytest

from ecc_hw import cnn, evaluate, golden
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.data import BUNDLED_TEST
from ecc_hw.events import preprocess, synthetic
from ecc_hw.linear import LinearMap
from ecc_hw.params import NetworkParams, QuantLayer
from test_events_pipeline import CONFIG, EVENT_CNN

T = 48


@pytest.fixture(scope="module")
def digits():
    test = np.load(BUNDLED_TEST)
    events = synthetic.saccade_events(test["x"][:200], seed=2)
    calib = synthetic.saccade_events(test["x"][500:600], seed=3)
    return (preprocess.EventSet(events, test["y"][:200], CONFIG.sensor, [str(i) for i in range(200)]),
            preprocess.EventSet(calib, None, CONFIG.sensor, [str(i) for i in range(100)]))


@pytest.fixture(scope="module")
def shipped(digits):
    """The bundled event CNN converted at T = 48 (8-bit weights, lambda = max)."""
    options = ConvertOptions(timesteps=T, input_kind="events", event_count_scale=CONFIG.count_scale)
    net = convert(EVENT_CNN, digits[1].cnn_inputs(CONFIG), options)
    net.input_kind, net.events = "events", CONFIG.to_json()
    return net


@pytest.mark.parametrize("count_scale", [2, 16])
def test_frames_add_up_to_the_cnn_input(digits, count_scale):
    config = preprocess.EventConfig(sensor=(34, 34), size=(17, 17), window_us=200_000, count_scale=count_scale)
    data = digits[0].limit(20)
    frames = data.spike_frames(config, T)
    np.testing.assert_array_equal(frames.sum(axis=1), count_scale * data.cnn_inputs(config))


def test_layer1_current_integrates_to_the_cnn_preactivation(shipped, digits):
    """sum_t (Wq_1 (*) s_0(t) + bq_1) = Wq_1 (*) (C x) + T bq_1 exactly, and theta_1 T z_1 / lambda_1 up to
    rounding (Wq, bq and theta are each rounded by at most 0.5, about 2% of full scale here)."""
    data = digits[0].limit(40)
    frames = data.spike_frames(CONFIG, T).astype(np.int64)
    x = data.cnn_inputs(CONFIG)
    first = shipped.layers[0]
    linear = LinearMap.of(first)
    integrated = linear.apply(frames.reshape(40 * T, -1)).reshape(40, T, -1).sum(axis=1)
    np.testing.assert_array_equal(integrated, linear.apply(CONFIG.count_scale * x.reshape(40, -1), with_bias=False)
                                  + T * linear.bias_per_neuron(np.float64))
    layer = evaluate.cnn_layers(shipped)[0]
    layer.relu = False
    z = cnn.forward([layer], x)
    error = np.abs(integrated / (first.threshold * T) - z / shipped.lambdas[1])
    assert error.max() < 0.03, error.max()          # 1.0 = theta_1 at every one of the T steps


def test_if_spike_count_follows_the_running_maximum():
    """With steps below theta, spikes(t) = max(0, max_{s <= t} floor((S(s) + E(s)) / theta)) exactly."""
    rng = np.random.default_rng(4)
    conv = QuantLayer(kind="conv", input_shape=(2, 6, 6), output_shape=(4, 6, 6),
                      weight=rng.integers(-9, 10, (4, 2, 3, 3)), bias=rng.integers(-4, 5, 4), threshold=60,
                      tre_charge=30, kernel=(3, 3), padding=(1, 1, 1, 1), nominal_fan_in=18)
    dense = QuantLayer(kind="dense", input_shape=(4, 6, 6), output_shape=(3, 1, 1),
                       weight=rng.integers(-127, 128, (3, 144)), bias=np.zeros(3, dtype=np.int64),
                       threshold=None, tre_charge=None, nominal_fan_in=144)
    net = NetworkParams(input_shape=(2, 6, 6), input_bits=8, input_signed=False, weight_bits=8, timesteps=T,
                        eta=0.5, kappa=100.0, layers=[conv, dense], lambdas=[1.0, 1.0, 1.0], input_kind="events",
                        events={"sensor": [6, 6], "size": [6, 6], "window_us": 480, "count_scale": 1})
    order = np.argsort(rng.random((5, T, 2, 6, 6)), axis=1)
    frames = (order < 3).astype(np.int64)              # bursts of ON and OFF events in random order
    result = golden.run(net, frames, record_spikes=True)
    current = LinearMap.of(conv).apply(frames.reshape(5 * T, -1)).reshape(5, T, -1)
    summed = np.cumsum(current, axis=1) + np.cumsum(golden.tre_schedule(conv.tre_charge, T))[None, :, None]
    assert np.abs(np.diff(summed, axis=1)).max() < conv.threshold
    expected = np.maximum(0, np.maximum.accumulate(summed // conv.threshold, axis=1))
    spikes = np.cumsum(result.spikes[0].transpose(1, 0, 2), axis=1)
    np.testing.assert_array_equal(spikes, expected)
    assert np.any(expected[:, -1] > np.maximum(0, summed[:, -1] // conv.threshold))  # order did matter


def test_shipped_event_snn_matches_its_cnn_at_48_frames(shipped, digits):
    """The property the event CNN is trained for: at 48 frames the SNN answers as the CNN does."""
    data = digits[0]
    cnn_predictions = cnn.forward(evaluate.cnn_layers(shipped), data.cnn_inputs(CONFIG)).argmax(axis=1)
    result = golden.run(shipped, data.spike_frames(CONFIG, T))
    cnn_accuracy = np.mean(cnn_predictions == data.labels)
    snn_accuracy = np.mean(result.predictions == data.labels)
    assert cnn_accuracy > 0.93 and snn_accuracy >= cnn_accuracy - 0.015, (cnn_accuracy, snn_accuracy)
    assert np.mean(result.predictions == cnn_predictions) >= 0.94
