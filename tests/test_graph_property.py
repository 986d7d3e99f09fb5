"""Property: random small DAGs (an input normalisation, residual Adds, Concats, max pools before and after ReLU,
grouped convs, average pools, BatchNorm, clipped ReLUs) built with onnx.helper convert, and the float forward
equals onnxruntime."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_graph_builders import OnnxNet, onnxruntime_output

from ecc_hw.graph.forward import forward
from ecc_hw.graph.pipeline import convert_graph

BLOCKS = ("conv", "residual", "projection", "concat", "maxpool_after", "maxpool_before", "avgpool_conv")


class Builder:
    """The net and its current tensor: ``name``, ``channels``, ``size`` (square maps); ``concat`` when the tensor
    is a Concat of activations (only a conv with group 1 or a max pool may read it), ``max_pooled`` when it holds
    max-pool outputs (a MaxPool over them is refused)."""

    def __init__(self, data, size):
        self.data, self.net = data, OnnxNet(input_shape=(1, 2, size, size), seed=data.draw(st.integers(0, 99)))
        self.name, self.channels, self.size, self.concat, self.max_pooled = "x", 2, size, False, False

    def draw(self, strategy):
        return self.data.draw(strategy)

    def conv_relu(self, source, c_in, c_out, groups=1, stride=1, k=3, bn=False, then_add=None):
        pre = self.net.conv(source, c_in, c_out, k=k, stride=stride, groups=groups, scale=1.0 / np.sqrt(c_in * k * k))
        if bn:
            pre = self.net.bn(pre, c_out)
        if then_add is not None:
            pre = self.net.node("Add", [pre, then_add])
            if self.draw(st.booleans()):
                pre = self.net.bn(pre, c_out)
        if self.draw(st.booleans()):
            return self.net.node("Relu", [pre])
        return self.net.node("Clip", [pre, self.net.const(np.array(0.0)), self.net.const(np.array(0.8))])

    def normalised_input(self) -> str:
        """x, or (x - mean) / std per channel."""
        if not self.draw(st.booleans()):
            return "x"
        mean, std = self.net.const(np.array([0.3, -0.2]).reshape(2, 1, 1)), self.net.const(np.array(0.7))
        return self.net.node("Div", [self.net.node("Sub", ["x", mean]), std])

    def block(self, kind):
        net, c, a = self.net, self.channels, self.name
        if kind == "conv":
            out = self.draw(st.sampled_from([c, 2 * c, 4]))
            groups = self.draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0 and out % g == 0]))
            stride = self.draw(st.sampled_from([1, 2] if self.size >= 4 else [1]))
            self.name = self.conv_relu(a, c, out, 1 if self.concat else groups, stride, bn=self.draw(st.booleans()))
            self.channels, self.size = out, (self.size + 1) // stride if stride == 2 else self.size
            self.concat = self.max_pooled = False
        elif kind in ("residual", "projection"):
            shortcut = a if kind == "residual" else net.conv(a, c, c, k=1, scale=1.0 / np.sqrt(c))
            self.name = self.conv_relu(a, c, c, bn=self.draw(st.booleans()), then_add=shortcut)
            self.concat = self.max_pooled = False
        elif kind == "concat":
            growth = self.draw(st.integers(1, 3))
            self.name = net.node("Concat", [a, self.conv_relu(a, c, growth)], axis=1)
            self.channels, self.concat = c + growth, True
        elif kind == "maxpool_after" and self.size >= 2 and not self.max_pooled:
            self.name = net.node("MaxPool", [a], kernel_shape=[2, 2], strides=[2, 2])
            self.size, self.max_pooled = self.size // 2, True
        elif kind == "maxpool_before" and self.size >= 2:
            pooled = net.node("MaxPool", [net.conv(a, c, c, scale=1.0 / np.sqrt(9 * c))], kernel_shape=[3, 3],
                              strides=[2, 2], pads=[1, 1, 1, 1])
            self.name, self.size = net.node("Relu", [pooled]), (self.size + 1) // 2
            self.concat, self.max_pooled = False, True
        elif kind == "avgpool_conv" and self.size >= 2:
            pooled = net.node("AveragePool", [a], kernel_shape=[2, 2], strides=[2, 2])
            self.name, self.size = self.conv_relu(pooled, c, c), self.size // 2
            self.concat = self.max_pooled = False

    def head(self):
        features = self.name
        if self.draw(st.booleans()):
            features, self.size = self.net.node("GlobalAveragePool", [features]), 1
        flat = self.net.node("Flatten", [features])
        return self.net.gemm(flat, self.channels * self.size * self.size, 3)


def random_network(tmp_path, data, size: int, blocks: list[str], stem: bool = True):
    """The GraphNetwork of a random DAG: a first conv layer on the (maybe normalised) input, then ``blocks``;
    without ``stem``, two branches on the input (a 3x3 and a 1x1 conv, Inception style) concatenated."""
    builder = Builder(data, size)
    source = builder.normalised_input()
    if stem:
        builder.name = builder.conv_relu(source, 2, 3)
    else:
        branches = [builder.conv_relu(source, 2, 2), builder.conv_relu(source, 2, 1, k=1)]
        builder.name, builder.concat = builder.net.node("Concat", branches, axis=1), True
    builder.channels = 3
    for kind in blocks:
        builder.block(kind)
    return convert_graph(builder.net.save(tmp_path / "random.onnx", builder.head()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(3, 8), blocks=st.lists(st.sampled_from(BLOCKS), min_size=1, max_size=4))
def test_random_dags_forward_like_onnxruntime(tmp_path, data, size, blocks):
    builder = Builder(data, size)
    builder.name = builder.conv_relu(builder.normalised_input(), 2, 3)
    builder.channels = 3
    for kind in blocks:
        builder.block(kind)
    path = builder.net.save(tmp_path / "random.onnx", builder.head())
    network = convert_graph(path)
    x = np.random.default_rng(0).normal(size=(3, 2, size, size))
    np.testing.assert_allclose(forward(network, x).logits, onnxruntime_output(path, x), rtol=1e-5, atol=1e-4)
