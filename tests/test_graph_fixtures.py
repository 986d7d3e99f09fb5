"""Every graph fixture converts, and the GraphNetwork's float forward equals onnxruntime on its images."""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from ecc_hw.graph.forward import forward
from ecc_hw.graph.network import INPUT, LAYER, MAX_POOL
from ecc_hw.graph.pipeline import convert_graph

FIXTURES = Path(__file__).parent / "fixtures" / "graph"
NAMES = sorted(path.stem for path in FIXTURES.glob("*.onnx"))


def onnxruntime_outputs(path: Path, x: np.ndarray, tensors=()) -> list[np.ndarray]:
    """The graph output and the named intermediate ``tensors`` for the batch ``x``."""
    model = onnx.load(str(path))
    for name in tensors:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})


@pytest.fixture(scope="module", params=NAMES)
def converted(request):
    """(name, network, x, onnxruntime logits) of one fixture."""
    path = FIXTURES / f"{request.param}.onnx"
    x = np.load(FIXTURES / f"{request.param}.npz")["x"]
    return request.param, convert_graph(path), x, onnxruntime_outputs(path, x)[0].reshape(len(x), -1)


def test_the_fixtures_are_many_and_small():
    assert len(NAMES) >= 11
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 2_000_000


def test_float_forward_equals_onnxruntime(converted):
    _, network, x, expected = converted
    logits = forward(network, x).logits
    assert len(x) >= 50
    np.testing.assert_array_equal(logits.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-4)


def test_every_edge_source_comes_earlier_and_shapes_fit(converted):
    _, network, _, _ = converted
    for layer in network.layers:
        assert layer.edges
        for edge in layer.edges:
            if edge.source.kind == LAYER:
                assert edge.source.index < layer.index
            elif edge.source.kind == MAX_POOL:
                assert network.max_pools[edge.source.index - 1].source.index < layer.index
            assert edge.geometry.input_shape == network.shape_of(edge.source)
            assert edge.geometry.output_shape == layer.output_shape
            assert edge.weight.shape == edge.geometry.weight_shape()
        assert len({edge.source.kind == INPUT for edge in layer.edges}) == 1


@pytest.mark.parametrize("name", ["resnet_legacy", "densenet_legacy", "depthwise_legacy"])
def test_layer_activations_equal_the_onnx_relu_outputs(name):
    path = FIXTURES / f"{name}.onnx"
    network = convert_graph(path)
    x = np.load(FIXTURES / f"{name}.npz")["x"][:8]
    nodes = {node.name: node for node in onnx.load(str(path)).graph.node}
    tensors = [nodes[layer.name].output[0] for layer in network.spiking_layers]
    expected = onnxruntime_outputs(path, x, tensors)[1:]
    for ours, theirs in zip(forward(network, x).layers, expected):
        np.testing.assert_allclose(ours, theirs.reshape(len(x), -1), rtol=1e-5, atol=1e-5)


def _edge_kinds(network):
    return [sorted((str(e.source), e.geometry.kind, e.geometry.kernel, e.geometry.stride) for e in layer.edges)
            for layer in network.layers]


def test_resnet_has_identity_and_projection_shortcuts():
    network = convert_graph(FIXTURES / "resnet_legacy.onnx")
    kinds = _edge_kinds(network)
    assert kinds[2] == [("layer 1", "identity", (1, 1), (1, 1)), ("layer 2", "conv", (3, 3), (1, 1))]
    assert kinds[4] == [("layer 3", "conv", (1, 1), (2, 2)), ("layer 4", "conv", (3, 3), (1, 1))]
    assert network.output_layer.edges[0].geometry.kind == "dense"
    assert network.output_layer.edges[0].geometry.pool.kernel == (7, 7)


def test_both_exporters_give_the_same_network():
    for stem in ("resnet", "densenet"):
        legacy, dynamo = (convert_graph(FIXTURES / f"{stem}_{exporter}.onnx") for exporter in ("legacy", "dynamo"))
        assert _edge_kinds(legacy) == _edge_kinds(dynamo)
        for ours, theirs in zip(legacy.layers, dynamo.layers):
            for a, b in zip(ours.edges, theirs.edges):
                np.testing.assert_allclose(a.weight, b.weight, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(ours.bias, theirs.bias, rtol=1e-4, atol=1e-6)


def test_densenet_cuts_kernels_by_concat_ranges_and_moves_the_transition_pool():
    network = convert_graph(FIXTURES / "densenet_legacy.onnx")
    transition = network.layer(4)
    assert [(str(e.source), e.concat_ranges) for e in transition.edges] == [
        ("layer 1", ((0, 8),)), ("layer 2", ((8, 12),)), ("layer 3", ((12, 16),))]
    assert all(e.geometry.kernel == (1, 1) and e.geometry.pool.kernel == (2, 2) for e in transition.edges)


def test_maxpool_nodes_sit_after_relus_with_padding_and_ceil_mode():
    network = convert_graph(FIXTURES / "maxpool_legacy.onnx")
    pools = network.max_pools
    assert [(p.source.index, p.kernel, p.stride, p.padding, p.ceil_mode) for p in pools] == [
        (1, (2, 2), (2, 2), (0, 0, 0, 0), False), (2, (3, 3), (2, 2), (1, 1, 1, 1), False),
        (3, (3, 3), (3, 3), (0, 0, 0, 0), True)]
    assert [str(layer.edges[0].source) for layer in network.layers[1:]] == ["max_pool 1", "max_pool 2", "max_pool 3"]


def test_depthwise_groups_and_relu6_clip():
    network = convert_graph(FIXTURES / "depthwise_legacy.onnx")
    assert [layer.edges[0].geometry.groups for layer in network.spiking_layers] == [1, 8, 1, 16, 1]
    assert [layer.clip for layer in network.spiking_layers] == [6.0, None, 6.0, None, 6.0]


def test_input_normalisation_gives_a_per_neuron_bias_only_where_padding_meets_it():
    network = convert_graph(FIXTURES / "input_norm_legacy.onnx")
    first = network.layer(1)
    assert first.bias.shape == (8, 14, 14)
    assert np.ptp(first.bias[:, 1:-1, 1:-1], axis=(1, 2)).max() < 1e-9   # the interior: one value per channel
    assert np.ptp(first.bias, axis=(1, 2)).min() > 1e-6                  # the border differs
    assert network.layer(2).bias.shape == (8,) and network.layer(2).edges[0].geometry.padding == (1, 1, 1, 1)


@pytest.mark.parametrize("name, layout, model_shape, shape", [
    ("nhwc_dynamo", "NHWC", (14, 14, 1), (1, 14, 14)), ("mlp_legacy", "NF", (196,), (196, 1, 1)),
    ("conv1d_dynamo", "NCL", (14, 14), (14, 1, 14)), ("resnet_legacy", "NCHW", (1, 14, 14), (1, 14, 14))])
def test_input_layouts(name, layout, model_shape, shape):
    spec = convert_graph(FIXTURES / f"{name}.onnx").input
    assert (spec.layout, spec.model_shape, spec.shape) == (layout, model_shape, shape)


def test_unoptimised_dynamo_chain_records_both_clips():
    network = convert_graph(FIXTURES / "chain_dynamo_raw.onnx")
    assert [layer.clip for layer in network.spiking_layers] == [4.0, 6.0]
    assert network.max_pools[0].ceil_mode
