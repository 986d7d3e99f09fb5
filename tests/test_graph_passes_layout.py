"""Each pass alone, on a tiny graph: average and max pools, zero Pad, layout, and moving MaxPools past ReLUs."""
import numpy as np
import pytest
from test_graph_builders import OnnxNet, graph_of, ops

from ecc_hw.errors import UserError
from ecc_hw.graph.passes.average_pool import average_pool
from ecc_hw.graph.passes.batchnorm import fold_batchnorm
from ecc_hw.graph.passes.clipped_relu import clipped_relu
from ecc_hw.graph.passes.commute_maxpool import commute_maxpool
from ecc_hw.graph.passes.constant_arithmetic import constant_arithmetic
from ecc_hw.graph.passes.layout import apply_layout
from ecc_hw.graph.passes.linear_maps import to_linear_maps
from ecc_hw.graph.passes.max_pool import max_pool
from ecc_hw.graph.passes.zero_pad import absorb_zero_pad


def test_average_pools_become_avgpool2d(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 8, 6))
    pooled = net.node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2])
    mean = net.node("ReduceMean", [pooled], axes=[-1, 2], keepdims=1)
    graph = average_pool(graph_of(net, net.node("GlobalAveragePool", [mean]), tmp_path))
    assert [(n.op, n.attributes["kernel"], n.attributes["stride"]) for n in graph.nodes] == [
        ("AvgPool2d", (2, 2), (2, 2)), ("AvgPool2d", (4, 3), (4, 3)), ("AvgPool2d", (1, 1), (1, 1))]


def test_a_1d_average_pool_and_a_mean_over_length(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 8))
    pooled = net.node("AveragePool", ["x"], kernel_shape=[2], strides=[2])
    graph = average_pool(graph_of(net, net.node("ReduceMean", [pooled], axes=[2]), tmp_path))
    assert [n.attributes["kernel"] for n in graph.nodes] == [(1, 2), (1, 4)]


@pytest.mark.parametrize("attributes, message", [
    ({"kernel_shape": [2, 2], "strides": [1, 1]}, "stride \\(1, 1\\) differs from kernel \\(2, 2\\)"),
    ({"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}, "padding is not supported"),
    ({"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, "a ceil-mode output is not supported"),
])
def test_average_pool_refusals(tmp_path, attributes, message):
    net = OnnxNet(input_shape=(1, 2, 5, 5))
    with pytest.raises(UserError, match=f"node 'pool' \\(AveragePool\\): {message}"):
        average_pool(graph_of(net, net.node("AveragePool", ["x"], name="pool", **attributes), tmp_path))


def test_max_pool_reads_padding_dilation_and_ceil_mode(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 9))
    out = net.node("MaxPool", ["x"], kernel_shape=[3], strides=[2], pads=[1, 0], dilations=[2], ceil_mode=1)
    (node,) = max_pool(graph_of(net, out, tmp_path)).nodes
    assert node.attributes == {"kernel": (1, 3), "ceil_mode": True, "stride": (1, 2), "padding": (0, 1, 0, 0),
                               "dilation": (1, 2)}


def test_a_zero_pad_joins_the_conv_padding(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 5, 5))
    padded = net.node("Pad", ["x", net.const(np.array([0, 0, 1, 2, 0, 0, 3, 0]))], name="pad")
    graph = absorb_zero_pad(to_linear_maps(graph_of(net, net.conv(padded, 2, 3, pad=1), tmp_path)))
    (node,) = graph.nodes
    assert node.inputs == ("x",) and node.attributes["padding"] == (2, 3, 4, 1)


@pytest.mark.parametrize("pads, value, message", [
    ([0, 0, 1, 1, 0, 0, 1, 1], 1.0, "only padding with zeros is supported"),
    ([0, 1, 0, 0, 0, 0, 0, 0], 0.0, "pads \\[0, 1, 0, 0, 0, 0, 0, 0\\]: only padding of the spatial axes"),
])
def test_zero_pad_refusals(tmp_path, pads, value, message):
    net = OnnxNet(input_shape=(1, 2, 5, 5))
    padded = net.node("Pad", ["x", net.const(np.array(pads)), net.const(np.array(value, np.float32))], name="pad")
    with pytest.raises(UserError, match=f"node 'pad' \\(Pad\\): {message}"):
        absorb_zero_pad(to_linear_maps(graph_of(net, net.conv(padded, 2, 3), tmp_path)))


def test_layout_reads_nhwc_input_and_removes_the_transposes(tmp_path):
    net = OnnxNet(input_shape=(1, 5, 4, 3))
    nchw = net.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    graph = apply_layout(to_linear_maps(graph_of(net, net.conv(nchw, 3, 2), tmp_path)))
    assert ops(graph) == ["ConvMap"] and graph.nodes[0].inputs == ("x",)
    spec = graph.input_spec
    assert (spec.layout, spec.model_shape, spec.shape) == ("NHWC", (5, 4, 3), (3, 5, 4))
    assert graph.shapes[graph.output] == (1, 2, 5, 4)


def test_layout_permutes_dense_columns_for_a_transpose_and_flatten(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 3, 4))
    channels_last = net.node("Transpose", ["x"], perm=[0, 2, 3, 1])
    dense = net.gemm(net.node("Flatten", [channels_last]), 24, 5)
    graph = to_linear_maps(graph_of(net, dense, tmp_path))
    weight = graph.nodes[-1].attributes["weight"]
    (node,) = apply_layout(graph).nodes
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    np.testing.assert_allclose(node.attributes["weight"] @ x.reshape(-1), weight @ x.transpose(1, 2, 0).reshape(-1))
    assert node.inputs == ("x",)


@pytest.mark.parametrize("shape, layout, channel_major", [
    ((1, 3, 7), "NCL", (3, 1, 7)), ((1, 12), "NF", (12, 1, 1)), ((1, 3, 2, 2), "NCHW", (3, 2, 2))])
def test_layout_reads_every_input_rank_channel_major(tmp_path, shape, layout, channel_major):
    net = OnnxNet(input_shape=shape)
    graph = apply_layout(graph_of(net, net.node("Concat", ["x", "x"], axis=-len(shape) + 1), tmp_path))
    assert (graph.input_spec.layout, graph.input_spec.shape) == (layout, channel_major)
    assert graph.nodes[0].attributes == {"axis": 1}
    assert graph.shapes[graph.output] == (1, 2 * channel_major[0], *channel_major[1:])


def test_layout_refuses_a_reorder_in_front_of_a_conv(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 3, 4))
    swapped = net.node("Transpose", ["x"], name="swap", perm=[0, 1, 3, 2])
    graph = to_linear_maps(graph_of(net, net.conv(swapped, 2, 2, name="conv"), tmp_path))
    with pytest.raises(UserError, match="node 'conv' \\(Conv\\): reads .* reshaped or reordered by node 'swap'"):
        apply_layout(graph)


def _canonical(graph):
    for apply in (to_linear_maps, fold_batchnorm, constant_arithmetic, clipped_relu, max_pool, apply_layout):
        graph = apply(graph)
    return graph


def test_a_maxpool_moves_past_a_positive_affine_and_the_relu(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 6, 6))
    pooled = net.node("MaxPool", [net.conv("x", 2, 3)], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    out = net.node("Relu", [net.bn(pooled, 3, positive=True)], name="relu")
    graph = commute_maxpool(_canonical(graph_of(net, out, tmp_path)))
    assert ops(graph) == ["ConvMap", "ChannelAffine", "Activation", "MaxPool2d"]
    assert graph.nodes[-1].output == out and graph.shapes[graph.nodes[2].output] == (1, 3, 6, 6)


def test_a_maxpool_stays_before_a_negative_scale(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 6, 6))
    pooled = net.node("MaxPool", [net.conv("x", 2, 3)], kernel_shape=[2, 2], strides=[2, 2])
    out = net.node("Relu", [net.node("Mul", [pooled, net.const(np.array(-2.0))])])
    graph = commute_maxpool(_canonical(graph_of(net, out, tmp_path)))
    assert ops(graph) == ["ConvMap", "MaxPool2d", "ChannelAffine", "Activation"]
