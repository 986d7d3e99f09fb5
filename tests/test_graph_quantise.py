"""Calibration and quantisation of graph networks (docs/arithmetic.md 1.3, 5.2, 5.3): on a chain the graph path
gives the chain converter's integers and predictions bit for bit; on graphs one gain per layer over all its edges,
u_n = u only for layers fed by the input, max-pool nodes with their source's lambda."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ecc_hw import golden
from ecc_hw.arithmetic import weight_full_scale
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.errors import UserError
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.forward import forward
from ecc_hw.graph.golden import run_graph
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.quantise import quantise_graph

DATA = Path(__file__).parents[1] / "ecc_hw" / "data"
FASHION = DATA / "fashion"


@pytest.fixture(scope="module")
def mnist_calibration():
    return np.load(DATA / "mnist_calib.npz")["x"].astype(np.float64)


@pytest.mark.parametrize("mode", ["max", "percentile"])
def test_on_a_chain_the_graph_path_equals_the_chain_path(mnist_calibration, mode):
    path = DATA / "mnist_cnn.onnx"
    params = convert(path, mnist_calibration, ConvertOptions(lambda_mode=mode, timesteps=12))
    network = convert_graph(path)
    lambdas = calibrate(network, mnist_calibration, mode)
    np.testing.assert_allclose([lambdas.input, *lambdas.layers], params.lambdas, rtol=1e-12)
    assert lambdas.input_signed == params.input_signed
    graph = quantise_graph(network, lambdas)
    assert graph.input_full_scale == params.input_full_scale
    for chain_layer, layer in zip(params.layers, graph.layers, strict=True):
        (edge,) = layer.edges
        assert (layer.threshold, layer.tre_charge) == (chain_layer.threshold, chain_layer.tre_charge)
        np.testing.assert_array_equal(edge.weight, chain_layer.weight.reshape(edge.weight.shape))
        np.testing.assert_array_equal(layer.bias, np.repeat(chain_layer.bias, layer.neurons // len(chain_layer.bias)))
    x = np.load(DATA / "mnist_test.npz")["x"][:40]
    chain = golden.run(params, golden.quantize_input(params, x), 12)
    x_q = graph.quantise_input(x)
    np.testing.assert_array_equal(x_q, golden.quantize_input(params, x).reshape(len(x), -1))
    result = run_graph(graph, x_q, 12)
    np.testing.assert_array_equal(result.predictions, chain.predictions)
    np.testing.assert_array_equal(result.output_membrane, chain.output_membrane)
    np.testing.assert_array_equal(result.spike_counts, chain.spike_counts)
    np.testing.assert_array_equal(result.synops, chain.synops)


@pytest.fixture(scope="module")
def fashion_calibration():
    return np.load(FASHION / "fashion_calib.npz")["x"][:100].astype(np.float64)


@pytest.mark.parametrize("name", ["resnet", "densenet", "maxpool"])
def test_one_gain_per_layer_over_all_its_edges(fashion_calibration, name):
    network = convert_graph(FASHION / f"{name}.onnx")
    lambdas = calibrate(network, fashion_calibration)
    graph = quantise_graph(network, lambdas, weight_bits=6)
    assert any(len(layer.edges) > 1 for layer in graph.layers) or network.max_pools
    for float_layer, layer in zip(network.layers, graph.layers):
        assert max(int(np.abs(edge.weight).max()) for edge in layer.edges) == weight_full_scale(6)
        lambda_layer = lambdas.layers[layer.index - 1]
        for float_edge, edge in zip(float_layer.edges, layer.edges):
            normalised = 100.0 * lambdas.of(float_edge.source) / lambda_layer * float_edge.weight
            np.testing.assert_array_equal(edge.weight, np.rint(layer.gain * normalised))
        unit = graph.input_full_scale if layer.fed_by_input else 1
        assert layer.unit == unit
        np.testing.assert_array_equal(layer.bias, np.rint(layer.gain * 100.0 * float_layer.bias_per_neuron()
                                                          / lambda_layer * unit))
        if layer.spiking:
            assert layer.threshold == max(1, int(np.rint(layer.gain * 100.0 * unit)))
            assert layer.tre_charge == int(np.rint(0.5 * layer.threshold))
        else:
            assert layer.threshold is None and layer.tre_charge is None


def test_max_pool_nodes_take_their_source_lambda_and_percentile_mode(fashion_calibration):
    network = convert_graph(FASHION / "maxpool.onnx")
    lambdas = calibrate(network, fashion_calibration, "percentile", 99.0)
    assert lambdas.max_pools == tuple(lambdas.layers[pool.source.index - 1] for pool in network.max_pools)
    activations = forward(network, fashion_calibration)
    first = activations.layers[0]
    assert lambdas.layers[0] == pytest.approx(np.percentile(first[first > 0], 99.0), rel=1e-12)
    assert lambdas.layers[-1] == pytest.approx(np.abs(activations.logits).max(), rel=1e-12)
    assert lambdas.input == 255.0 and not lambdas.input_signed


def test_signed_input_and_calibration_errors(fashion_calibration):
    network = convert_graph(FASHION / "vgg.onnx")
    signed = calibrate(network, fashion_calibration - 128.0)
    assert signed.input_signed and signed.input == 128.0
    assert quantise_graph(network, signed).input_full_scale == 127
    with pytest.raises(UserError, match="needs 2..16 input bits"):
        quantise_graph(network, signed, input_bits=1)
    with pytest.raises(UserError, match="lambda_0 = 0"):
        calibrate(network, np.zeros_like(fashion_calibration[:2]))
    first = network.layers[0]
    dead = replace(network, layers=(replace(first, bias=np.full_like(first.bias, -1e9)), *network.layers[1:]))
    with pytest.raises(UserError, match=rf"layer 1 \('{first.name}'\): lambda is 0"):
        calibrate(dead, fashion_calibration[:4])
