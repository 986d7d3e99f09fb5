"""Conversion methods (ecc, wn2017, rmp, radix), TRE as initial charge, clip lambdas from the graph."""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ecc_hw import arithmetic, convert, golden, methods, onnx_frontend, params
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, PACKAGE_DATA
from ecc_hw.errors import UserError
from ecc_hw.params import NetworkParams, QuantLayer
from ecc_hw.passes import convert_graph
from test_convert import two_dense_layers

FIXTURES = PACKAGE_DATA / "methods"


def quantised(method, alpha=0.8):
    layers, _, kappa, eta = methods.quantize(two_dense_layers(), [2.0, 4.0, 5.0], False, ConvertOptions(),
                                             methods.recipe(method, alpha))
    return layers, kappa, eta


def test_ecc_method_is_the_spec_quantiser():
    # test_convert.test_hand_computed_integers derives these by hand.
    (first, second), kappa, eta = quantised("ecc")
    assert first.weight.tolist() == [[64, -127], [127, 32]] and first.bias.tolist() == [1619, -3238]
    assert (first.threshold, first.tre_charge, kappa, eta) == (64770, 32385, 100.0, 0.5)
    assert second.weight.tolist() == [[42, -85], [21, 127]] and second.bias.tolist() == [4, 0]


def test_wn2017_hand_computed():
    # Threshold 1 after normalisation (kappa = 1): kappa cancels, so the integers are ecc's with R = 0.
    (first, second), kappa, eta = quantised("wn2017")
    assert first.weight.tolist() == [[64, -127], [127, 32]] and first.bias.tolist() == [1619, -3238]
    assert (first.threshold, first.tre_charge, kappa, eta) == (64770, 0, 1.0, 0.0)
    assert second.weight.tolist() == [[42, -85], [21, 127]] and second.bias.tolist() == [4, 0]


def test_rmp_hand_computed():
    # alpha 0.8: lambda_1 -> 3.2 (lambda_0 = 2 and lambda_N = 5 unchanged).
    # W'_1 = 100*2/3.2 W_1 = [[31.25, -62.5], [62.5, 15.625]], g_1 = 127/62.5 = 2.032:
    # Wq_1 = rint([[63.5, -127], [127, 31.75]]) = [[64, -127], [127, 32]];
    # b'_1 = 31.25 b_1 = [3.125, -6.25], bq_1 = rint(2.032 * 255 * b'_1) = rint([1619.25, -3238.5]);
    # theta_1 = rint(2.032 * 100 * 255) = 51816 = 0.8 * 64770; R_1 = 0 (no TRE).
    # W'_2 = 100*3.2/5 W_2 = 64 W_2, g_2 = 127/192: Wq_2 = rint([[42.33, -84.67], [21.17, 127]]);
    # b'_2 = 100*0.4/5 = 8, bq_2 = rint(8 * 127/192) = rint(5.29) = 5 (ecc: 4).
    (first, second), kappa, eta = quantised("rmp", 0.8)
    assert first.weight.tolist() == [[64, -127], [127, 32]] and first.bias.tolist() == [1619, -3238]
    assert (first.threshold, first.tre_charge, eta) == (51816, 0, 0.0)
    assert second.weight.tolist() == [[42, -85], [21, 127]] and second.bias.tolist() == [5, 0]
    ninety = quantised("rmp", 0.9)[0][0]
    assert ninety.threshold == int(np.rint(127 / (100 * 2 / 3.6) * 100 * 255))  # 58293


def radix_two_layers():
    layers = two_dense_layers()
    return methods.quantize_radix(layers, [255.0, 3.0, 5.0], False, ConvertOptions(method="radix", timesteps=2))


def test_radix_hand_computed():
    # T = 2, L = 4; D_0 = 255/255 = 1, D_1 = 3/3 = 1: W'_1 = W_1, theta_1 = floor(127/1) = 127,
    # Wq_1 = rint(127 W_1) = rint([[63.5, -127], [127, 31.75]]) = [[64, -127], [127, 32]],
    # bq_1 = rint(127 (b_1 + 1/2)) = rint([76.2, 38.1]) = [76, 38] (the half-step shift).
    # Output: W'_2 = W_2 D_1 = W_2, g = 127/3: Wq_2 = [[42, -85], [21, 127]], bq_2 = rint(127/3*0.4) = 17.
    first, second = radix_two_layers()
    assert first.weight.tolist() == [[64, -127], [127, 32]] and first.bias.tolist() == [76, 38]
    assert (first.threshold, first.tre_charge) == (127, 0)
    assert second.weight.tolist() == [[42, -85], [21, 127]] and second.bias.tolist() == [17, 0]


def test_radix_neuron_by_hand():
    # x = (3, 1): V_1 = [64*3 - 127 + 76, 127*3 + 32 + 38] = [141, 451].
    # Neuron 1: 141 < 254, 141 >= 127 -> bits 01 (q = 1); neuron 2: 451 >= 254 (197), 197 >= 127 -> 11 (q = 3).
    # Output: 2 * W_2 s(1) + W_2 s(2) + b = W_2 (1, 3) + b = [42 - 255 + 17, 21 + 381] = [-196, 402].
    # The float QCFS ANN agrees: z_1 = (0.6, 3.05), q = clip(floor(z + 1/2), 0, 3) = (1, 3).
    from ecc_hw import radix
    net = NetworkParams((2, 1, 1), 8, False, 8, 2, 0.0, 1.0, radix_two_layers(), [255.0, 3.0, 5.0],
                        method="radix")
    result = radix.run(net, np.array([[[[3]], [[1]]]]), record_spikes=True)
    assert result.spikes[0][:, 0, :].astype(int).tolist() == [[0, 1], [1, 1]]
    assert result.output_membrane.tolist() == [[-196, 402]] and result.predictions.tolist() == [1]
    assert radix.qcfs_forward(net, np.array([[[[3.0]], [[1.0]]]]))[1][0].tolist() == [[1, 3]]


def one_neuron(tre_mode):
    """Layer 1: one neuron, constant current 3, theta 10, R 5; output: copies its spikes."""
    first = QuantLayer("dense", (1, 1, 1), (1, 1, 1), np.array([[1]]), np.array([3]), 10, 5, nominal_fan_in=1)
    out = QuantLayer("dense", (1, 1, 1), (1, 1, 1), np.array([[1]]), np.array([0]), None, None, nominal_fan_in=1)
    return NetworkParams((1, 1, 1), 1, False, 8, 4, 0.5, 100.0, [first, out], [1.0, 1.0, 1.0], tre_mode=tre_mode)


def test_tre_initial_against_spread_by_hand():
    # spread: e = (1, 1, 1, 2): V = 4, 8, 12 -> spike at t=3 (V 2), 7.  Final charge 7.
    # initial: V_0 = 5: 8, 11 -> spike at t=2 (V 1), 4, 7.                Final charge 7.
    spread = golden.run(one_neuron("spread"), np.zeros((1, 1, 1, 1)), record_spikes=True)
    initial = golden.run(one_neuron("initial"), np.zeros((1, 1, 1, 1)), record_spikes=True)
    assert spread.spikes[0][:, 0, 0].astype(int).tolist() == [0, 0, 1, 0]
    assert initial.spikes[0][:, 0, 0].astype(int).tolist() == [0, 1, 0, 0]
    # same charge in: 4 * 3 + 5 = 10 * spikes + final V in both
    assert 4 * 3 + 5 - 10 * spread.spike_counts[0, 0] == 4 * 3 + 5 - 10 * initial.spike_counts[0, 0] == 7


def test_tre_initial_on_the_bundled_model_same_charge_different_times():
    calibration = np.load(BUNDLED_CALIB)["x"]
    x = calibration[:20]
    nets = {mode: convert.convert(PACKAGE_DATA / "mnist_cnn.onnx", calibration,
                                  ConvertOptions(tre_mode=mode, timesteps=16)) for mode in ("spread", "initial")}
    for a, b in zip(nets["spread"].layers, nets["initial"].layers):   # same integers, same R_n
        assert np.array_equal(a.weight, b.weight) and a.tre_charge == b.tre_charge
    for layer in nets["spread"].spiking_layers:
        assert arithmetic.tre_schedule(layer.tre_charge, 16).sum() == layer.tre_charge
    runs = {mode: golden.run(net, arithmetic.quantize_input(net, x), 16, record_spikes=True)
            for mode, net in nets.items()}
    s, i = runs["spread"].spikes[0], runs["initial"].spikes[0]
    # Layer 1 sees a constant current, so V_final = T*I + R - theta*count: counts differ by at most 1 ...
    counts = s.sum(axis=0).astype(int) - i.sum(axis=0).astype(int)
    assert np.abs(counts).max() <= 1
    # ... and the initial charge fires earlier: spike times differ.
    assert not np.array_equal(s, i)
    first_s = np.where(s.any(axis=0), s.argmax(axis=0), 99)
    first_i = np.where(i.any(axis=0), i.argmax(axis=0), 99)
    assert np.all(first_i <= first_s) and np.any(first_i < first_s)


def clipped_model(path, style, high=0.75):
    """x (3) -> Gemm -> [Clip(0, high) | Relu + Min(high)] -> Gemm (2)."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b1"),
             numpy_helper.from_array(rng.normal(size=(2, 4)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.zeros(2, np.float32), "b2"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(high, np.float32), "hi")]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], name="fc1", transB=1)]
    if style == "clip":
        nodes.append(helper.make_node("Clip", ["h", "lo", "hi"], ["a"], name="clip"))
    else:
        nodes += [helper.make_node("Relu", ["h"], ["r"], name="relu"),
                  helper.make_node("Min", ["r", "hi"], ["a"], name="min")]
    nodes.append(helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], name="fc2", transB=1))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("style", ["clip", "relu_min"])
def test_clip_lambda_is_read_from_the_graph(tmp_path, style):
    model = clipped_model(tmp_path / "m.onnx", style)
    layers = convert_graph(onnx_frontend.load(model, (3, 1, 1)))
    assert layers[0].clip == 0.75 and layers[0].relu
    x = np.random.default_rng(2).normal(size=(200, 3, 1, 1)) * 4
    net = convert.convert(model, x, ConvertOptions(input_shape=(3, 1, 1)))
    assert net.lambdas[1] == 0.75  # the clip maximum, not the calibration maximum
    from ecc_hw import cnn
    activations = cnn.forward(layers, x, keep_activations=True)[1][0]
    assert activations.max() == pytest.approx(0.75)


def test_min_without_relu_before_it_is_an_error(tmp_path):
    model = clipped_model(tmp_path / "m.onnx", "relu_min")
    proto = onnx.load(model)
    proto.graph.node.remove(proto.graph.node[2])            # drop the Relu: Gemm -> Min
    proto.graph.node[2].input[0] = "h"
    onnx.save(proto, tmp_path / "bad.onnx")
    with pytest.raises(UserError, match="Min"):
        convert_graph(onnx_frontend.load(tmp_path / "bad.onnx", (3, 1, 1)))


@pytest.mark.parametrize("name", ["relu6", "clip", "qcfs16"])
def test_committed_fixtures_clip_maxima_become_lambdas(name):
    record = json.loads((FIXTURES / f"{name}.onnx.json").read_text())
    net = convert.convert(FIXTURES / f"{name}.onnx", np.load(BUNDLED_CALIB)["x"][:50], ConvertOptions())
    assert net.lambdas[1:3] == pytest.approx(record["clip"], rel=1e-6)


def test_method_options_and_parameter_file_round_trip(tmp_path):
    calibration = np.load(BUNDLED_CALIB)["x"][:50]
    net = convert.convert(PACKAGE_DATA / "mnist_cnn.onnx", calibration, ConvertOptions(method="rmp", alpha=0.9))
    assert net.method == "rmp" and net.eta == 0.0 and all(layer.tre_charge == 0 for layer in net.spiking_layers)
    base = net.provenance["calibration_lambdas"]
    assert net.lambdas[1:-1] == pytest.approx([0.9 * v for v in base[1:-1]])
    params.save(net, tmp_path / "net")
    assert params.load(tmp_path / "net").method == "rmp"
    with pytest.raises(UserError, match=r"^alpha: 1.5 is outside \(0, 1\]$"):
        ConvertOptions(method="rmp", alpha=1.5).check()
    with pytest.raises(UserError, match="^method: 'nope' is not one of ecc, wn2017, rmp, radix$"):
        ConvertOptions(method="nope").check()
    with pytest.raises(UserError, match="radix needs"):
        ConvertOptions(method="radix", timesteps=128).check()


def test_ablation_without_cmb_folds_bn_without_epsilon():
    calibration = np.load(BUNDLED_CALIB)["x"][:50]
    model = PACKAGE_DATA / "mnist_cnn.onnx"
    loaded = onnx_frontend.load(model)
    with_eps = convert_graph(loaded)
    without = convert_graph(type(loaded)(**{**loaded.__dict__, "ops": methods.prepare_ops(
        loaded.ops, methods.ablation(cn=True, cmb=False, tre=True))}))
    bn = next(op for op in loaded.ops if op.kind == "BatchNormalization")
    eps = bn.attrs["epsilon"]
    ratio = without[0].weight / with_eps[0].weight
    var = np.asarray(bn.consts[4], dtype=np.float64)
    expected = np.sqrt(var + eps) / np.sqrt(var)
    assert np.allclose(ratio[:, 0, 0, 0], expected)
    no_cn = convert.convert(model, calibration, ConvertOptions(), recipe=methods.ablation(False, True, True))
    assert no_cn.lambdas[1:-1] == [1.0, 1.0]
