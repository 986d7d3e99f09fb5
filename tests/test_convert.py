"""Calibration, CN and quantisation against hand-computed integers and the bundled model's accuracy."""
import numpy as np
import pytest

from ecc_hw import cnn, convert, golden, methods, onnx_frontend
from ecc_hw.arithmetic import quantize_input
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_MODEL, BUNDLED_TEST
from ecc_hw.errors import UserError
from ecc_hw.passes import FloatLayer, convert_graph
from ecc_hw.variants import Method


def two_dense_layers():
    first = FloatLayer("dense", "fc1", (2, 1, 1), (2, 1, 1), np.array([[0.5, -1.0], [1.0, 0.25]]),
                       np.array([0.1, -0.2]), nominal_fan_in=2, relu=True)
    second = FloatLayer("dense", "fc2", (2, 1, 1), (2, 1, 1), np.array([[1.0, -2.0], [0.5, 3.0]]),
                        np.array([0.4, 0.0]), nominal_fan_in=2)
    return [first, second]


def test_hand_computed_integers():
    # lambda = 2, 4, 5; kappa 100; B = 8 (127); I = 8 unsigned (u = 255).
    # W'_1 = 100*2/4 W_1 = [[25, -50], [50, 12.5]], g_1 = 127/50 = 2.54.
    # Wq_1 = rint([[63.5, -127], [127, 31.75]]) = [[64, -127], [127, 32]] (63.5 rounds to even 64)
    # bq_1 = rint(2.54 * 25 * b * 255) = rint([1619.25, -3238.5]) = [1619, -3238] (half to even)
    # theta_1 = rint(2.54 * 100 * 255) = 64770 (a divided gain would give 10039); R_1 = 32385
    # W'_2 = 80 W_2, g_2 = 127/240: Wq_2 = rint([42.33, -84.67, 21.17, 127]); bq_2 = rint(4.233) = 4
    layers = methods.quantize_rate(two_dense_layers(), [2.0, 4.0, 5.0], False, ConvertOptions())
    first, second = layers
    assert first.weight.tolist() == [[64, -127], [127, 32]]
    assert first.bias.tolist() == [1619, -3238]
    assert first.threshold == 64770
    assert first.tre_charge == 32385
    assert second.weight.tolist() == [[42, -85], [21, 127]]
    assert second.bias.tolist() == [4, 0]
    assert second.threshold is None and second.tre_charge is None


def test_threshold_scales_with_the_gain_not_against_it():
    # Doubling max |W'| halves the gain: theta must halve too (multiplied), not double (divided).
    layers = two_dense_layers()
    base = methods.quantize_rate(layers, [2.0, 4.0, 5.0], False, ConvertOptions())[0].threshold
    layers[0].weight = layers[0].weight * 2
    halved = methods.quantize_rate(layers, [2.0, 4.0, 5.0], False, ConvertOptions())[0].threshold
    assert halved == round(base / 2)


def test_signed_input_uses_the_signed_full_scale():
    first = methods.quantize_rate(two_dense_layers(), [2.0, 4.0, 5.0], True, ConvertOptions())[0]
    assert first.threshold == int(np.rint(2.54 * 100 * 127))


def test_lambdas_max_and_percentile():
    layers = two_dense_layers()
    x = np.array([[[[1.0]], [[2.0]]], [[[-0.5]], [[0.25]]]])
    activations = cnn.forward(layers, x, keep_activations=True)[1]
    by_max = convert.lambdas_from_calibration(layers, x, ConvertOptions())
    assert by_max[0] == 2.0
    assert by_max[1] == pytest.approx(activations[0].max())
    assert by_max[2] == pytest.approx(np.abs(activations[1]).max())
    by_percentile = convert.lambdas_from_calibration(layers, x, ConvertOptions(lambda_mode="percentile", percentile=50))
    positive = activations[0][activations[0] > 0]
    assert by_percentile[1] == pytest.approx(np.percentile(positive, 50))


def test_dead_layer_is_an_error_naming_it():
    layers = two_dense_layers()
    layers[0].bias = np.array([-100.0, -100.0])
    with pytest.raises(UserError, match="layer 1 \\('fc1'\\): lambda is 0"):
        convert.lambdas_from_calibration(layers, np.ones((2, 2, 1, 1)), ConvertOptions())


@pytest.mark.parametrize("option, field, message", [
    ({"weight_bits": 1}, "weight_bits", "1 is outside 2..16"),
    ({"weight_bits": 17}, "weight_bits", "17 is outside 2..16"),
    ({"input_bits": 0}, "input_bits", "0 is outside 1..16 (2..16 for signed input)"),
    ({"timesteps": 0}, "timesteps", "0 must be >= 1"),
    ({"eta": 2.0}, "eta", "2.0 is outside 0..1"),
    ({"kappa": 0.0}, "kappa", "0.0 must be > 0"),
    ({"percentile": 0.0}, "percentile", "0.0 is outside (0, 100]"),
    ({"method": "radix", "timesteps": 17}, "timesteps", "radix needs 1..16 bits (L = 2^T), got 17"),
])
def test_options_out_of_range_name_their_field(option, field, message):
    """The library names the option field, not a flag: the CLI maps fields to flags."""
    with pytest.raises(UserError) as info:
        ConvertOptions(**option).check()
    assert (info.value.field, info.value.message) == (field, message)
    assert str(info.value) == f"{field}: {message}" and "--" not in str(info.value)


@pytest.mark.parametrize("field, value", [("lambda_mode", "min"), ("pool_mode", "stack"), ("tre_mode", "late"),
                                          ("method", "nope"), ("input_kind", "audio")])
def test_unknown_variant_names_its_field(field, value):
    with pytest.raises(UserError) as info:
        ConvertOptions(**{field: value})
    assert info.value.field == field and info.value.message.startswith(f"'{value}' is not one of ")


def test_variant_strings_become_members_that_equal_them():
    options = ConvertOptions(method="rmp", tre_mode="initial", pool_mode="layer", lambda_mode="percentile")
    assert options.method is Method.RMP and options.method == "rmp" and f"{options.method}" == "rmp"
    assert (options.tre_mode, options.pool_mode, options.lambda_mode) == ("initial", "layer", "percentile")
    assert ConvertOptions(method=Method.RMP) == ConvertOptions(method="rmp")


def test_calibration_data_of_wrong_shape_or_nan():
    x = np.load(BUNDLED_CALIB)["x"][:10].astype(np.float64)
    with pytest.raises(UserError, match=r"x has shape \(10, 1, 27, 28\)"):
        convert.convert(BUNDLED_MODEL, x[:, :, 1:, :], ConvertOptions())
    x[3, 0, 5, 5] = np.nan
    with pytest.raises(UserError, match="NaN"):
        convert.convert(BUNDLED_MODEL, x, ConvertOptions())


def test_bundled_model_8_bit_snn_within_half_a_point_of_the_cnn_at_t128():
    calibration = np.load(BUNDLED_CALIB)["x"]
    test = np.load(BUNDLED_TEST)
    net = convert.convert(BUNDLED_MODEL, calibration, ConvertOptions())
    assert net.lambdas[0] == 255.0 and not net.input_signed  # raw 0..255 pixels
    cnn_logits = cnn.forward(convert_graph(onnx_frontend.load(BUNDLED_MODEL)), test["x"])
    cnn_accuracy = np.mean(cnn_logits.argmax(1) == test["y"])
    result = golden.run(net, quantize_input(net, test["x"]), 128)
    snn_accuracy = np.mean(result.predictions == test["y"])
    assert abs(snn_accuracy - cnn_accuracy) <= 0.005, (snn_accuracy, cnn_accuracy)


def test_same_inputs_give_identical_integers():
    calibration = np.load(BUNDLED_CALIB)["x"][:100]
    first = convert.convert(BUNDLED_MODEL, calibration, ConvertOptions())
    second = convert.convert(BUNDLED_MODEL, calibration, ConvertOptions())
    for a, b in zip(first.layers, second.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.bias, b.bias)
        assert a.threshold == b.threshold
