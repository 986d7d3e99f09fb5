"""Bias calibration of the integer graph network (ecc_hw.graph.bias_calibration, docs/arithmetic.md 5.8) on the
bundled resnet_legacy graph fixture: deterministic, changes only bq_n, records its T, and reduces the per-channel
mean current error of the spiking layers on the calibration images."""
from pathlib import Path

import numpy as np
import pytest

from ecc_hw.graph.bias_calibration import (
    calibrate_biases,
    cnn_expected_current,
    cnn_sources,
    mean_abs_errors,
    snn_mean_current,
    source_rates,
)
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"
TIMESTEPS = 8


@pytest.fixture(scope="module")
def case():
    network = convert_graph(GRAPH_FIXTURES / "resnet_legacy.onnx")
    x = np.load(GRAPH_FIXTURES / "resnet_legacy.npz")["x"][:32].astype(np.float64)
    graph = quantise_graph(network, calibrate(network, x, "percentile", 99.0))
    return graph, x, calibrate_biases(graph, x, TIMESTEPS)


def test_calibration_is_deterministic_and_records_its_timesteps(case):
    graph, x, result = case
    again = calibrate_biases(graph, x, TIMESTEPS)
    assert result.bias_calibrated_for == result.timesteps == TIMESTEPS
    for first, second in zip(result.graph.layers, again.graph.layers):
        np.testing.assert_array_equal(first.bias, second.bias)
    for first, second in zip(result.corrections, again.corrections):
        np.testing.assert_array_equal(first, second)


def test_only_biases_change(case):
    graph, _, result = case
    assert any(np.any(correction) for correction in result.corrections)
    assert result.graph.network is graph.network and result.graph.lambdas is graph.lambdas
    assert (result.graph.weight_bits, result.graph.input_bits, result.graph.input_full_scale, result.graph.kappa,
            result.graph.eta) == (graph.weight_bits, graph.input_bits, graph.input_full_scale, graph.kappa, graph.eta)
    for old, new, correction in zip(graph.layers, result.graph.layers, result.corrections):
        assert (new.index, new.name, new.output_shape, new.threshold, new.tre_charge, new.gain, new.unit) == \
               (old.index, old.name, old.output_shape, old.threshold, old.tre_charge, old.gain, old.unit)
        assert len(new.edges) == len(old.edges)
        for old_edge, new_edge in zip(old.edges, new.edges):
            assert new_edge.source == old_edge.source and new_edge.geometry == old_edge.geometry
            np.testing.assert_array_equal(new_edge.weight, old_edge.weight)
        assert new.bias.shape == old.bias.shape and new.bias.dtype == old.bias.dtype == np.int64
        assert correction.shape == (old.output_shape[0],) and correction.dtype == np.int64
        per_neuron = np.repeat(correction, old.neurons // old.output_shape[0])
        np.testing.assert_array_equal(new.bias - old.bias, per_neuron)


def test_calibration_reduces_the_current_error_of_the_spiking_layers(case):
    graph, x, result = case
    before = mean_abs_errors(graph, x, TIMESTEPS)[:-1]
    after = mean_abs_errors(result.graph, x, TIMESTEPS)[:-1]
    assert sum(after) < sum(before)
    for layer, (old, new) in enumerate(zip(before, after), start=1):
        assert new <= old + 1e-9, f"layer {layer}: {old} -> {new}"


def test_mean_current_is_the_average_z_without_tre(case):
    graph, x, _ = case
    rates = source_rates(graph, graph.quantise_input(x[:2]), TIMESTEPS)
    values = cnn_sources(graph.network, x[:2])
    layer = graph.layers[0]  # fed by the input: the SNN current is the constant Wq x_q + bq
    current = snn_mean_current(layer, rates)
    expected = cnn_expected_current(graph, layer, values)
    assert current.shape == expected.shape == (2, layer.neurons)
    assert np.allclose(current, np.rint(current))
    assert np.max(np.abs(current - expected)) < 0.05 * layer.threshold


def test_output_layer_is_optional_and_t_is_checked(case):
    graph, x, _ = case
    result = calibrate_biases(graph, x[:8], TIMESTEPS, include_output=False)
    np.testing.assert_array_equal(result.graph.output_layer.bias, graph.output_layer.bias)
    assert not np.any(result.corrections[-1])
    with pytest.raises(ValueError):
        calibrate_biases(graph, x, 0)
