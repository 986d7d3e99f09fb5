"""Linear maps: fan-outs against a brute-force count, exact dtypes."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecc_hw.linear import LinearMap
from ecc_hw.testing import random_network
from reference import linear_loop


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 5000))
def test_fan_out_equals_brute_force_synapse_count(seed):
    params = random_network(seed, input_shape=(2, 6, 5))
    for layer in params.layers:
        ones = dataclasses.replace(layer, weight=np.ones_like(layer.weight))
        channels, height, width = layer.input_shape
        expected = []
        for index in range(channels * height * width):
            one_hot = np.zeros(channels * height * width, dtype=np.int64)
            one_hot[index] = 1
            expected.append(sum(linear_loop(ones, one_hot.reshape(channels, height, width).tolist())))
        assert LinearMap.of(layer).fan_out().tolist() == expected


def test_integer_products_are_exact_in_the_chosen_dtype():
    params = random_network(4, weight_bits=16)
    linear = LinearMap.of(params.layers[0])
    assert linear.exact_dtype(1) in (np.float32, np.float64)
    with pytest.raises(OverflowError):
        linear.exact_dtype(2.0 ** 60)
