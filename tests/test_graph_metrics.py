"""Operation counts of graph networks (ecc_hw.graph.metrics, docs/arithmetic.md 5.6, 5.4): on a chain they are the
chain's (ecc_hw.metrics); max-pool compares count the non-padding cells of every window."""
from pathlib import Path

import numpy as np

from ecc_hw import metrics
from ecc_hw.convert import ConvertOptions, convert
from ecc_hw.graph import metrics as graph_metrics
from ecc_hw.graph.pipeline import convert_graph

DATA = Path(__file__).parents[1] / "ecc_hw" / "data"


def test_on_a_chain_the_counts_are_the_chain_counts():
    calibration = np.load(DATA / "mnist_calib.npz")["x"][:50].astype(np.float64)
    params = convert(DATA / "mnist_cnn.onnx", calibration, ConvertOptions())
    network = convert_graph(DATA / "mnist_cnn.onnx")
    assert graph_metrics.macs_per_image(network) == metrics.macs_per_image(params)
    assert graph_metrics.first_layer_macs_per_image(network) == metrics.first_layer_macs_per_image(params)
    assert graph_metrics.spiking_neurons(network) == metrics.spiking_neurons(params)
    assert graph_metrics.maxpool_compares_per_image(network, 8) == 0


def test_max_pool_compares_and_edge_macs_of_a_graph():
    network = convert_graph(DATA / "fashion" / "maxpool.onnx")
    cells = sum(pool.kernel[0] * pool.kernel[1] * pool.neurons for pool in network.max_pools)  # 2x2, unpadded
    assert graph_metrics.maxpool_compares_per_image(network, 3) == 3 * cells
    resnet = convert_graph(DATA / "fashion" / "resnet.onnx")
    per_layer = [sum(edge.nominal_fan_in for edge in layer.edges) * layer.neurons for layer in resnet.layers]
    assert graph_metrics.macs_per_image(resnet) == sum(per_layer)
    assert any(len(layer.edges) > 1 for layer in resnet.layers)
