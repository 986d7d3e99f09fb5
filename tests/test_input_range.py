"""The data's range against the calibration's: warnings, errors for a different unit, calibration dtype."""
import numpy as np
import pytest

from ecc_hw.errors import UserError
from ecc_hw.input_range import SCALE_ERROR, SCALE_WARNING, calibrated_range, calibration_warnings, check_input_range
from ecc_hw.testing import random_network


def calibrated(lambda_0, signed=False, input_bits=8):
    net = random_network(1, input_bits=input_bits, signed=signed)
    net.lambdas[0] = lambda_0
    return net


def images(low, high):
    return np.linspace(low, high, 2 * 7 * 7 * 3).reshape(3, 2, 7, 7)


@pytest.mark.parametrize("lambda_0, signed, low, high", [
    (255.0, False, 0, 255), (1.0, False, 0, 1), (255.0, False, 0, 200), (2.0, True, -0.8, 1.9),
    (255.0, False, -0.4, 255),   # negatives that quantise to 0 anyway
])
def test_data_in_the_calibrated_range_passes(lambda_0, signed, low, high):
    assert check_input_range(calibrated(lambda_0, signed), images(low, high), "test.npz") == []


@pytest.mark.parametrize("lambda_0, signed, low, high, fragments", [
    (255.0, False, 0, 1, ["test.npz: x spans 0..1", "0..255 (unsigned input)", "1/255 of lambda_0"]),
    (128.0, True, 0, 1, ["x spans 0..1", "-128..128 (signed input)", "1/128 of lambda_0"]),
    (1.0, False, 0, 255, ["x spans 0..255", "0..1 (unsigned input)", "255x lambda_0"]),
    (255.0, False, 0, 0, ["x spans 0..0", "every value of x is 0"]),
])
def test_a_different_unit_is_an_error(lambda_0, signed, low, high, fragments):
    with pytest.raises(UserError) as refused:
        check_input_range(calibrated(lambda_0, signed), images(low, high), "test.npz")
    message = str(refused.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message


@pytest.mark.parametrize("lambda_0, signed, low, high, fragments", [
    (255.0, False, 0, 30, ["x spans 0..30", "1/8.5 of lambda_0", "input level 30 of 255"]),
    (10.0, False, 0, 50, ["5x lambda_0", "values above lambda_0 saturate"]),
    (255.0, False, -128, 127, ["x spans -128..127", "0..255 (unsigned input)", "negative values clip to 0"]),
    (128.0, True, 0, 255, ["-128..128 (signed input)", "no negative values", "uint8 pixels read as int8"]),
])
def test_a_mismatch_short_of_a_different_unit_is_one_warning(lambda_0, signed, low, high, fragments):
    warnings = check_input_range(calibrated(lambda_0, signed), images(low, high), "test.npz")
    assert len(warnings) == 1 and warnings[0].startswith("test.npz: ") and "\n" not in warnings[0]
    assert all(fragment in warnings[0] for fragment in fragments), warnings[0]


def test_thresholds_are_the_documented_factors():
    net = calibrated(64.0)
    assert check_input_range(net, images(0, 64 / SCALE_WARNING * 1.01), "t.npz") == []
    assert len(check_input_range(net, images(0, 64 / SCALE_WARNING), "t.npz")) == 1
    assert len(check_input_range(net, images(0, 64 / SCALE_ERROR * 1.01), "t.npz")) == 1
    with pytest.raises(UserError):
        check_input_range(net, images(0, 64 / SCALE_ERROR), "t.npz")


def test_calibrated_range_text():
    assert calibrated_range(255.0, False) == "0..255 (unsigned input)"
    assert calibrated_range(1.5, True) == "-1.5..1.5 (signed input)"


@pytest.mark.parametrize("x", [
    np.zeros((2, 1, 4, 4), dtype=np.uint8), np.arange(32, dtype=np.int8).reshape(2, 1, 4, 4),
    np.linspace(-1, 1, 32).reshape(2, 1, 4, 4), np.zeros((0, 1, 4, 4), dtype=np.int8),
])
def test_calibration_data_without_signed_integers_below_zero_passes(x):
    assert calibration_warnings(x, "calib.npz") == []


def test_signed_integer_calibration_with_negatives_is_one_warning():
    wrapped = (np.arange(256, dtype=np.int64).reshape(4, 1, 8, 8)).astype(np.uint8).astype(np.int8)
    warnings = calibration_warnings(wrapped, "calib.npz")
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert warnings[0].startswith("calib.npz: x is int8 with negative values (-128..127)")
