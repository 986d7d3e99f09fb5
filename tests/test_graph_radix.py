"""The radix (binary-coded) method on graph networks (ecc_hw.graph.radix, docs/graph_radix.md): the golden model
equals the integer quantised ANN source by source on random DAGs (residual Adds, Concats, max pools, grouped convs),
equals the chain's ecc_hw.radix on the bundled MNIST QCFS chain, and on the QCFS Fashion-MNIST ResNet at T = 4;
a max pool that forgets the tied-for-max set is caught."""
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_graph_property import BLOCKS, random_network

from ecc_hw import convert, radix
from ecc_hw.arithmetic import quantize_input
from ecc_hw.convert import ConvertOptions
from ecc_hw.data import BUNDLED_CALIB, BUNDLED_TEST, PACKAGE_DATA
from ecc_hw.errors import UserError
from ecc_hw.graph import radix as graph_radix
from ecc_hw.graph.calibrate import calibrate
from ecc_hw.graph.edge_map import EdgeMap
from ecc_hw.graph.forward import forward
from ecc_hw.graph.network import LAYER, MAX_POOL, Source
from ecc_hw.graph.pipeline import convert_graph
from ecc_hw.graph.pooling import max_pool
from ecc_hw.graph.radix import qcfs_graph_forward, quantise_radix_graph, quantised_graph_ann, run_radix_graph
from ecc_hw.train import LEVELS_KEY

FASHION = Path(__file__).parents[1] / "ecc_hw" / "data" / "fashion"


def bit_values(spikes: np.ndarray) -> np.ndarray:
    """sum_t 2^(T-t) s(t) of MSB-first bit trains (T, B, n) as int64 (B, n)."""
    weights = 1 << np.arange(len(spikes) - 1, -1, -1)
    return np.tensordot(weights, spikes.astype(np.int64), axes=1)


def synapses_used(graph, spikes: dict) -> np.ndarray:
    """Per image, the synapses of every edge's geometry leaving the neurons that fired, summed over the steps."""
    total = np.zeros(next(iter(spikes.values())).shape[1], dtype=np.int64)
    for layer in graph.layers:
        for edge in layer.edges:
            if edge.source in spikes:
                counts = spikes[edge.source].sum(axis=0).astype(np.float64)
                used = EdgeMap(edge.geometry, np.ones(edge.geometry.weight_shape())).apply(counts)
                total += np.rint(used.sum(axis=1)).astype(np.int64)
    return total


def assert_radix_equals_ann(graph, x_q, timesteps):
    """Every spiking layer's and max-pool node's bits are the binary digits of the quantised ANN's level, the
    output membranes are its outputs; spike counts and SynOps follow from the bits."""
    result = run_radix_graph(graph, x_q, timesteps, record_spikes=True)
    output, levels = quantised_graph_ann(graph, x_q, timesteps)
    assert set(result.spikes) == set(levels) == set(graph.network.schedule())
    for source, q in levels.items():
        np.testing.assert_array_equal(bit_values(result.spikes[source]), q, err_msg=str(source))
    for pool in graph.network.max_pools:
        np.testing.assert_array_equal(levels[Source(MAX_POOL, pool.index)], max_pool(pool, levels[pool.source]))
    np.testing.assert_array_equal(result.output_membrane, output)
    np.testing.assert_array_equal(result.predictions, np.argmax(output, axis=1))
    for index, layer in enumerate(graph.spiking_layers):
        bits = result.spikes[Source(LAYER, layer.index)]
        np.testing.assert_array_equal(result.spike_counts[:, index], bits.sum(axis=(0, 2)))
    np.testing.assert_array_equal(result.synops, synapses_used(graph, result.spikes))
    return result


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 6), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=3),
       weight_bits=st.integers(3, 8), timesteps=st.integers(1, 6), mode=st.sampled_from(["max", "percentile"]))
def test_random_dags_equal_their_quantised_ann(tmp_path, data, size, blocks, weight_bits, timesteps, mode):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(data.draw(st.integers(0, 9))).normal(size=(6, 2, size, size))
    try:
        graph = quantise_radix_graph(network, calibrate(network, x, mode, 99.0), weight_bits, 6, timesteps)
    except UserError:  # a dead layer or all-zero weights on random data
        assume(False)
    assert_radix_equals_ann(graph, graph.quantise_input(x), timesteps)


def fashion_graph(name, timesteps, weight_bits=8):
    """The radix IntegerGraph of a bundled Fashion-MNIST model, calibrated on the bundled 500 images."""
    network = convert_graph(FASHION / f"{name}.onnx")
    calibration = np.load(FASHION / "fashion_calib.npz")["x"].astype(np.float64)
    return quantise_radix_graph(network, calibrate(network, calibration), weight_bits, 8, timesteps)


def or_of_the_window(node, spikes):
    """Mutant: every window cell's bit counts at every step, not only those still tied for the maximum."""
    return np.stack([max_pool(node, step_spikes.astype(np.int64)) for step_spikes in spikes]).astype(bool)


def test_a_max_pool_that_forgets_the_tied_set_is_caught(monkeypatch, tmp_path):
    graph = fashion_graph("maxpool", 4)
    assert len(graph.network.max_pools) == 3
    x_q = graph.quantise_input(np.load(FASHION / "fashion_test.npz")["x"][:8].astype(np.float64))
    assert_radix_equals_ann(graph, x_q, 4)
    monkeypatch.setattr(graph_radix, "max_pool_bits", or_of_the_window)
    with pytest.raises(AssertionError):
        assert_radix_equals_ann(graph, x_q, 4)
    with pytest.raises(AssertionError, match="max_pool"):  # the random-DAG property finds it too
        test_random_dags_equal_their_quantised_ann(tmp_path)


def test_the_mnist_qcfs_chain_equals_the_chain_radix_model():
    path = PACKAGE_DATA / "methods" / "qcfs16.onnx"
    calibration = np.load(BUNDLED_CALIB)["x"]
    x = np.load(BUNDLED_TEST)["x"][:300]
    params = convert.convert(path, calibration, ConvertOptions(method="radix", timesteps=4))
    chain = radix.run(params, quantize_input(params, x))
    network = convert_graph(path)
    graph = quantise_radix_graph(network, calibrate(network, calibration.astype(np.float64)), 8, 8, 4)
    for chain_layer, layer in zip(params.layers, graph.layers):
        np.testing.assert_array_equal(layer.edges[0].weight.ravel(), np.asarray(chain_layer.weight).ravel())
        assert layer.threshold == chain_layer.threshold
    result = assert_radix_equals_ann(graph, graph.quantise_input(x), 4)
    np.testing.assert_array_equal(result.output_membrane, chain.output_membrane)
    np.testing.assert_array_equal(result.predictions, chain.predictions)
    np.testing.assert_array_equal(result.spike_counts, chain.spike_counts)
    np.testing.assert_array_equal(result.synops, chain.synops)


def test_radix_at_t4_equals_the_quantised_ann_on_the_qcfs16_resnet():
    # resnet_qcfs16 was trained with QCFS at L = 16 = 2^4 levels: T = 4 bits; 8-bit weights and inputs.
    model = onnx.load(str(FASHION / "resnet_qcfs16.onnx"))
    assert {p.key: p.value for p in model.metadata_props}[LEVELS_KEY] == "16"
    graph = fashion_graph("resnet_qcfs16", 4)
    assert all(layer.clip is not None for layer in graph.network.spiking_layers)
    test = np.load(FASHION / "fashion_test.npz")
    x, labels = test["x"].astype(np.float64), test["y"]
    x_q = graph.quantise_input(x)
    result = run_radix_graph(graph, x_q, 4)
    output, _ = quantised_graph_ann(graph, x_q, 4)
    np.testing.assert_array_equal(result.output_membrane, output)  # all 1,000 images
    assert_radix_equals_ann(graph, x_q[:50], 4)
    cnn = np.argmax(forward(graph.network, x).logits, axis=1)
    qcfs_ann = np.argmax(qcfs_graph_forward(graph.network, graph.lambdas, x, 16), axis=1)
    recorded = json.loads((FASHION / "models.json").read_text())["models"]["resnet_qcfs16.onnx"]
    assert np.sum(cnn == labels) == recorded["correct"] == 882   # the exported model: Clip(0, theta)
    assert np.sum(qcfs_ann == labels) == 883                      # as trained: 16 levels, float64
    assert np.sum(result.predictions == labels) == 884            # radix SNN = quantised ANN, 8-bit weights
    assert np.sum(result.predictions == qcfs_ann) >= 970          # 8-bit rounding moves a few level boundaries


def test_timesteps_outside_the_radix_range_are_refused():
    with pytest.raises(UserError, match="radix needs 1..16 bits"):
        fashion_graph("resnet_qcfs4", 0)
