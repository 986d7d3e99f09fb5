"""Every refusal of docs/arithmetic.md 5.1 / 5.4 / 5.7 is one line naming the file, the node and its op."""
import numpy as np
import pytest
from test_graph_builders import OnnxNet

from ecc_hw.errors import UserError
from ecc_hw.graph.pipeline import convert_graph


def relu_conv(net, x, c_in, c_out, name=None, **kw):
    return net.node("Relu", [net.conv(x, c_in, c_out, **kw)], name=name)


def flat_head(net, x, features):
    return net.gemm(net.node("Flatten", [x]), features, 3)


def two_convs(net):
    return flat_head(net, net.node("Relu", [net.conv(net.conv("x", 2, 3, name="c1"), 3, 3, name="c2")]), 108)


def mixed_sources(net):
    a = relu_conv(net, "x", 2, 3)
    return flat_head(net, net.node("Relu", [net.node("Add", [net.conv("x", 2, 3), net.conv(a, 3, 3)])],
                                   name="mix"), 108)


def grouped_concat(net):
    a, b = relu_conv(net, "x", 2, 2), relu_conv(net, "x", 2, 2)
    joined = net.node("Concat", [a, b], axis=1)
    return flat_head(net, net.node("Relu", [net.conv(joined, 4, 4, groups=2, name="g")]), 144)


def relu_over_concat(net):
    a = relu_conv(net, "x", 2, 2)
    joined = net.node("Concat", [net.conv(a, 2, 2), net.conv(a, 2, 2)], axis=1)
    return flat_head(net, net.node("Relu", [joined], name="inception"), 144)


def spatial_scale(net):
    scaled = net.node("Mul", ["x", net.const(np.arange(36.0).reshape(1, 1, 6, 6))], name="scale")
    return flat_head(net, relu_conv(net, scaled, 2, 3), 108)


def output(op):
    def build(net):
        logits = flat_head(net, relu_conv(net, "x", 2, 3), 108)
        if op == "Clip":
            return net.node("Clip", [logits, net.const(np.array(0.0)), net.const(np.array(6.0))], name="last")
        if op == "MaxPool":
            return net.node("MaxPool", [net.conv(relu_conv(net, "x", 2, 3), 3, 3)], name="last", kernel_shape=[2, 2])
        return net.node(op, [logits], name="last")
    return build


def maxpool_over(what):
    def build(net):
        a = relu_conv(net, "x", 2, 3)
        source = {"input": "x", "scaled": net.node("Mul", [a, net.const(np.array(2.0))]),
                  "pooled": net.node("AveragePool", [a], kernel_shape=[2, 2], strides=[2, 2]),
                  "pre-activation": net.conv(a, 3, 3)}[what]
        pooled = net.node("MaxPool", [source], name="mp", kernel_shape=[2, 2], strides=[2, 2])
        channels = 2 if what == "input" else 3
        size = 3 if what != "pooled" else 1
        return flat_head(net, relu_conv(net, pooled, channels, 3), 3 * size * size)
    return build


def pooled_3x3(net):
    pooled = net.node("AveragePool", [net.conv(relu_conv(net, "x", 2, 3), 3, 3)], name="avg", kernel_shape=[2, 2],
                      strides=[2, 2])
    return flat_head(net, net.node("Relu", [pooled]), 27)


def reordered_input(net):
    swapped = net.node("Transpose", ["x"], name="swap", perm=[0, 1, 3, 2])
    return flat_head(net, relu_conv(net, swapped, 2, 3, name="r"), 108)


def batch_reshape(net):
    flat = net.node("Reshape", [relu_conv(net, "x", 2, 3), net.const(np.array([-1]))], name="flatten_batch")
    return net.node("MatMul", [net.node("Unsqueeze", [flat, net.const(np.array([0]))]), net.const(np.ones((108, 3)))])


def no_relu(net):
    return flat_head(net, "x", 72)


def sub_of_tensors(net):
    a = relu_conv(net, "x", 2, 3)
    return flat_head(net, net.node("Relu", [net.node("Sub", [net.conv(a, 3, 3), a], name="diff")]), 108)


def pad_before_relu(net):
    padded = net.node("Pad", [net.conv("x", 2, 3), net.const(np.array([0, 0, 1, 1, 0, 0, 1, 1]))], name="pad")
    return flat_head(net, net.node("Relu", [padded]), 192)


CASES = [
    (two_convs, "c2", "Conv", "'c1' and 'c2' are two linear maps with no activation between them"),
    (mixed_sources, "mix", "Relu", "mixes the network input with spiking sources"),
    (grouped_concat, "g", "Conv", "grouped Conv 'g' (2 groups) reads a Concat"),
    (relu_over_concat, "inception", "Relu", "Concat of pre-activations (Inception style)"),
    (spatial_scale, "scale", "Mul", "varies over space"),
    (output("Relu"), "last", "Relu", "produces the graph output; the logits must come from a linear node"),
    (output("Clip"), "last", "Clip", "produces the graph output"),
    (output("MaxPool"), "last", "MaxPool", "produces the graph output"),
    (output("Sigmoid"), "last", "Sigmoid", "op Sigmoid is not supported"),
    (maxpool_over("input"), "mp", "MaxPool", "a MaxPool over the network input is not supported"),
    (maxpool_over("scaled"), "mp", "MaxPool", "a MaxPool over a scaled tensor is not supported"),
    (maxpool_over("pooled"), "mp", "MaxPool", "a MaxPool over a pooled tensor is not supported"),
    (maxpool_over("pre-activation"), "mp", "MaxPool", "reads a pre-activation; a MaxPool must follow a ReLU"),
    (pooled_3x3, "Relu", "Relu", "'avg' pools the output of"),
    (reordered_input, "Conv", "Conv", "reshaped or reordered by node 'swap' (Transpose)"),
    (batch_reshape, "flatten_batch", "Reshape", "changes the batch axis"),
    (sub_of_tensors, "diff", "Sub", "Sub of two data tensors is not supported"),
    (pad_before_relu, "pad", "Pad", "only a Pad in front of convolutions is supported"),
]


@pytest.mark.parametrize("build, node, op, message", CASES, ids=[case[0].__name__ for case in CASES])
def test_refusals_are_one_line_naming_the_node(tmp_path, build, node, op, message):
    net = OnnxNet()
    path = net.save(tmp_path / "bad.onnx", build(net))
    with pytest.raises(UserError) as error:
        convert_graph(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"{path}: node '{node}") and f"({op})" in text
    assert message in text, text


def test_a_max_pool_window_of_padding_only_is_refused(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 1, 1))
    pooled = net.node("MaxPool", [relu_conv(net, "x", 2, 3)], name="mp", kernel_shape=[1, 2], pads=[0, 1, 0, 1],
                      dilations=[1, 2])
    path = net.save(tmp_path / "empty.onnx", flat_head(net, relu_conv(net, pooled, 3, 3), 3))
    with pytest.raises(UserError, match="node 'mp' \\(MaxPool\\): has a window that holds only padding"):
        convert_graph(path)


def test_a_network_without_relu_is_refused(tmp_path):
    net = OnnxNet()
    path = net.save(tmp_path / "linear.onnx", no_relu(net))
    with pytest.raises(UserError, match="the network has no ReLU"):
        convert_graph(path)


def test_a_cast_of_the_data_is_refused(tmp_path):
    net = OnnxNet()
    cast = net.node("Cast", ["x"], name="cast", to=1)
    path = net.save(tmp_path / "cast.onnx", flat_head(net, relu_conv(net, cast, 2, 3), 108))
    with pytest.raises(UserError, match="node 'cast' \\(Cast\\): op Cast is only supported on constants"):
        convert_graph(path)
