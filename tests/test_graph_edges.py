"""The edge builder (docs/arithmetic.md 5.1, 5.4): merging, scaling, Concat ranges, pools, biases, max-pool nodes.

Each tiny graph is also run forward against onnxruntime.
"""
import numpy as np
from onnx import numpy_helper
from test_graph_builders import OnnxNet, onnxruntime_output

from ecc_hw.graph.forward import forward
from ecc_hw.graph.network import LAYER, MAX_POOL, Source
from ecc_hw.graph.pipeline import convert_graph


def converted(net: OnnxNet, out: str, tmp_path):
    """The GraphNetwork of the net, after checking its forward pass against onnxruntime."""
    path = net.save(tmp_path / "net.onnx", out)
    network = convert_graph(path)
    x = np.random.default_rng(5).normal(size=(4, *net.input_shape[1:]))
    np.testing.assert_allclose(forward(network, x).logits, onnxruntime_output(path, x), rtol=1e-5, atol=1e-5)
    return network


def stem(net: OnnxNet, channels: int = 3) -> str:
    return net.node("Relu", [net.conv("x", 2, channels)], name="stem")


def head(net: OnnxNet, x: str, features: int) -> str:
    return net.gemm(net.node("Flatten", [x]), features, 4, name="head")


def weight_of(net: OnnxNet, node: str) -> np.ndarray:
    """The float64 weight initializer of the named node."""
    proto = next(n for n in net.nodes if n.name == node)
    return next(np.asarray(numpy_helper.to_array(i), dtype=np.float64)
                for i in net.initializers if i.name == proto.input[1])


def test_edges_with_the_same_source_and_geometry_merge(tmp_path):
    net = OnnxNet()
    a = stem(net)
    total = net.node("Add", [net.conv(a, 3, 3, k=1, name="p"), net.conv(a, 3, 3, k=1, name="q")])
    network = converted(net, head(net, net.node("Relu", [total]), 108), tmp_path)
    (edge,) = network.layer(2).edges
    np.testing.assert_allclose(edge.weight, weight_of(net, "p") + weight_of(net, "q"))
    assert edge.nodes == ("stem", "p", "q")


def test_an_identity_edge_and_a_1x1_edge_stay_two_and_bn_scales_both(tmp_path):
    net = OnnxNet()
    a = stem(net)
    total = net.node("Add", [net.conv(a, 3, 3, k=1, name="p"), a])
    network = converted(net, head(net, net.node("Relu", [net.bn(total, 3, name="bn")]), 108), tmp_path)
    conv, identity = network.layer(2).edges
    assert (conv.geometry.kind, identity.geometry.kind) == ("conv", "identity")
    scale = identity.weight
    np.testing.assert_allclose(conv.weight, weight_of(net, "p") * scale[:, None, None, None], rtol=1e-12)
    assert network.layer(2).bias.shape == (3,)


def test_a_concat_cuts_the_consumers_kernel(tmp_path):
    net = OnnxNet()
    a = stem(net, 3)
    b = net.node("Relu", [net.conv(a, 3, 2)], name="b")
    joined = net.node("Concat", [a, b, a], axis=1)
    network = converted(net, head(net, net.node("Relu", [net.conv(joined, 8, 4, name="c")]), 144), tmp_path)
    kernel = weight_of(net, "c")
    first, second = network.layer(3).edges
    assert (first.source, first.concat_ranges) == (Source(LAYER, 1), ((0, 3), (5, 8)))
    np.testing.assert_allclose(first.weight, kernel[:, 0:3] + kernel[:, 5:8])
    assert (second.source, second.concat_ranges) == (Source(LAYER, 2), ((3, 5),))
    np.testing.assert_allclose(second.weight, kernel[:, 3:5])


def test_a_pool_after_a_1x1_conv_moves_in_front_of_it(tmp_path):
    net = OnnxNet()
    pooled = net.node("AveragePool", [net.conv(stem(net), 3, 4, k=1, name="p")], kernel_shape=[2, 2], strides=[2, 2])
    network = converted(net, head(net, net.node("Relu", [pooled]), 36), tmp_path)
    (edge,) = network.layer(2).edges
    assert edge.geometry.pool.kernel == (2, 2) and edge.geometry.input_shape == (3, 6, 6)
    np.testing.assert_allclose(edge.weight, weight_of(net, "p") / 4)
    assert edge.nominal_fan_in == 3


def test_a_pool_after_a_3x3_conv_composes_into_the_output_layer(tmp_path):
    net = OnnxNet()
    logits_map = net.conv(stem(net), 3, 4, name="logits")
    network = converted(net, net.node("Flatten", [net.node("GlobalAveragePool", [logits_map])]), tmp_path)
    (edge,) = network.output_layer.edges
    assert edge.geometry.kind == "dense" and edge.weight.shape == (4, 108)


def test_input_normalisation_before_a_padded_conv_gives_a_per_neuron_bias(tmp_path):
    net = OnnxNet()
    centred = net.node("Sub", ["x", net.const(np.array([0.5, -1.0]).reshape(2, 1, 1))])
    scaled = net.node("Div", [centred, net.const(np.array(0.25))])
    network = converted(net, head(net, net.node("Relu", [net.conv(scaled, 2, 3)]), 108), tmp_path)
    bias = network.layer(1).bias
    assert bias.shape == (3, 6, 6)
    np.testing.assert_allclose(bias[:, 1:-1, 1:-1], np.broadcast_to(bias[:, 2:3, 2:3], (3, 4, 4)))
    assert np.all(np.abs(bias[:, 0, 0] - bias[:, 2, 2]) > 1e-9)


def test_every_relu_is_a_spiking_layer_even_over_activations(tmp_path):
    net = OnnxNet()
    network = converted(net, head(net, net.node("Relu", [stem(net)]), 108), tmp_path)
    assert len(network.layers) == 3
    (edge,) = network.layer(2).edges
    assert (edge.source, edge.geometry.kind, edge.nominal_fan_in) == (Source(LAYER, 1), "identity", 1)


def test_a_maxpool_over_a_concat_is_one_node_per_part(tmp_path):
    net = OnnxNet()
    a = stem(net, 3)
    b = net.node("Relu", [net.conv(a, 3, 2)], name="b")
    pooled = net.node("MaxPool", [net.node("Concat", [a, b], axis=1)], name="pool", kernel_shape=[2, 2],
                      strides=[2, 2])
    network = converted(net, head(net, net.node("Relu", [net.conv(pooled, 5, 2)]), 18), tmp_path)
    assert [(p.name, p.source, p.output_shape) for p in network.max_pools] == [
        ("pool[0:3]", Source(LAYER, 1), (3, 3, 3)), ("pool[3:5]", Source(LAYER, 2), (2, 3, 3))]
    assert [e.source for e in network.layer(3).edges] == [Source(MAX_POOL, 1), Source(MAX_POOL, 2)]
    assert network.schedule() == (Source(LAYER, 1), Source(MAX_POOL, 1), Source(LAYER, 2), Source(MAX_POOL, 2),
                                  Source(LAYER, 3))


def test_the_output_layer_may_have_several_edges(tmp_path):
    net = OnnxNet()
    a = stem(net)
    b = net.node("Relu", [net.conv(a, 3, 3)], name="b")
    logits = net.node("Add", [head(net, a, 108), net.gemm(net.node("Flatten", [b]), 108, 4, name="other")])
    network = converted(net, logits, tmp_path)
    assert [e.source for e in network.output_layer.edges] == [Source(LAYER, 1), Source(LAYER, 2)]
    assert not network.output_layer.spiking and network.output_layer.index == 3


def test_a_concat_of_activations_added_to_a_layer_becomes_identity_edges_at_channel_offsets(tmp_path):
    net = OnnxNet()
    a = stem(net, 3)
    b = net.node("Relu", [net.conv(a, 3, 2)], name="b")
    joined = net.node("Concat", [a, b], axis=1)
    total = net.node("Add", [net.conv(joined, 5, 5, name="c"), joined])
    network = converted(net, head(net, net.node("Relu", [net.bn(total, 5)]), 180), tmp_path)
    identities = [e for e in network.layer(3).edges if e.geometry.kind == "identity"]
    assert [(e.source, e.geometry.channel_offset, e.weight.shape) for e in identities] == [
        (Source(LAYER, 1), 0, (3,)), (Source(LAYER, 2), 3, (2,))]
    assert all(e.geometry.output_shape == (5, 6, 6) for e in identities)
