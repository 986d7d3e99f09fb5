"""Channel-wise lambdas as a rescaling of the float network: the logits stay, every channel's lambda becomes
the layer's, and the plain-loop channel maps of each geometry agree with the weights they index."""
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph_property import BLOCKS, random_network

from ecc_hw.graph.calibrate import spiking_lambda
from ecc_hw.graph.channel_scaling import equalise_channels, input_channels, output_channels
from ecc_hw.graph.forward import forward
from ecc_hw.graph.pipeline import convert_graph

GRAPH_FIXTURES = Path(__file__).parent / "fixtures" / "graph"


def _per_channel_lambdas(network, x):
    result = []
    for layer, values in zip(network.spiking_layers, forward(network, x).layers):
        per_channel = values.reshape(len(values), layer.output_shape[0], -1)
        result.append(np.array([spiking_lambda(per_channel[:, c], layer.clip, "max", 100.0)
                                for c in range(layer.output_shape[0])]))
    return result


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 7), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=4))
def test_rescaling_keeps_the_logits_and_equalises_unclipped_channels(tmp_path, data, size, blocks):
    network = random_network(tmp_path, data, size, blocks)
    x = np.random.default_rng(1).normal(size=(16, 2, size, size))
    scaled = equalise_channels(network, x, "max")
    np.testing.assert_allclose(forward(scaled, x).logits, forward(network, x).logits, rtol=1e-9, atol=1e-9)
    for layer, before, after in zip(network.spiking_layers, _per_channel_lambdas(network, x),
                                    _per_channel_lambdas(scaled, x)):
        if layer.clip is not None:
            np.testing.assert_array_equal(before, after)
            continue
        alive = before > 0
        if np.any(alive):
            reference = np.median(before[alive])
            np.testing.assert_allclose(after[alive], reference, rtol=1e-9)


def test_channel_maps_follow_the_weights_layout():
    """Plain loops: a conv weight (o, j, ., .) of group g reads channel g * C_in/groups + j and feeds o; a dense
    column reads the channel of its pooled map position; an identity gain c feeds channel offset + c."""
    network = convert_graph(GRAPH_FIXTURES / "densenet_legacy.onnx")
    depthwise = convert_graph(GRAPH_FIXTURES / "depthwise_legacy.onnx")
    edges = [edge for net in (network, depthwise) for layer in net.layers for edge in layer.edges]
    assert {edge.geometry.kind for edge in edges} >= {"conv", "dense"}
    assert any(edge.geometry.groups > 1 for edge in edges)
    for edge in edges:
        geometry = edge.geometry
        shape = geometry.weight_shape()
        reads, feeds = input_channels(geometry), output_channels(geometry)
        assert reads.shape == feeds.shape == shape
        channels, height, width = geometry.pooled_shape
        for index in np.ndindex(*shape):
            if geometry.kind == "conv":
                outputs_per_group = shape[0] // geometry.groups
                expected = (index[0] // outputs_per_group * (channels // geometry.groups) + index[1], index[0])
            elif geometry.kind == "dense":
                expected = (index[1] // (height * width), index[0] // (shape[0] // geometry.output_shape[0]))
            else:
                expected = (index[0], geometry.channel_offset + index[0])
            assert (reads[index], feeds[index]) == expected


def test_convert_option_changes_the_network_not_its_cnn(tmp_path):
    from ecc_hw.convert import ConvertOptions
    from ecc_hw.graph.convert import convert_graph_model

    data = np.load(GRAPH_FIXTURES / "depthwise_legacy.npz")["x"]
    options = dict(bias_calibration=0, timesteps=16)
    plain = convert_graph_model(GRAPH_FIXTURES / "depthwise_legacy.onnx", data, ConvertOptions(**options))
    scaled = convert_graph_model(GRAPH_FIXTURES / "depthwise_legacy.onnx", data,
                                 ConvertOptions(**options, channel_lambdas=True))
    np.testing.assert_allclose(forward(scaled.network, data).logits, forward(plain.network, data).logits, atol=1e-9)
    assert any(not np.array_equal(a.edges[0].weight, b.edges[0].weight)
               for a, b in zip(plain.graph.layers, scaled.graph.layers))
