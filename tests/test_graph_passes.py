"""Each pass alone, on a tiny graph: constant folding, identities, dead nodes, softmax, linear maps, BN,
constant arithmetic and clipped ReLU."""
import numpy as np
import pytest
from onnx import numpy_helper
from test_graph_builders import OnnxNet, graph_of, ops

from ecc_hw.errors import UserError
from ecc_hw.graph.passes.batchnorm import fold_batchnorm
from ecc_hw.graph.passes.clipped_relu import clipped_relu
from ecc_hw.graph.passes.constant_arithmetic import constant_arithmetic
from ecc_hw.graph.passes.drop_output_softmax import drop_output_softmax
from ecc_hw.graph.passes.fold_constants import fold_constants
from ecc_hw.graph.passes.linear_maps import to_linear_maps
from ecc_hw.graph.passes.remove_identities import remove_identities
from ecc_hw.graph.passes.remove_unused import remove_unused


def test_fold_constants_evaluates_the_exporters_shape_chain(tmp_path):
    net = OnnxNet()
    relu = net.node("Relu", ["x"])
    shape = net.node("Shape", [relu])
    batch = net.node("Gather", [shape, net.const(np.array(0))], axis=0)
    target = net.node("Concat", [net.node("Unsqueeze", [batch, net.const(np.array([0]))]),
                                 net.const(np.array([-1]))], axis=0)
    graph = fold_constants(graph_of(net, net.node("Reshape", [relu, target], name="reshape"), tmp_path))
    assert ops(graph) == ["Relu", "Reshape"]
    np.testing.assert_array_equal(graph.constants[target], [1, -1])
    assert graph.shapes["reshape_out"] == (1, 72)


def test_fold_constants_casts_constants_and_keeps_the_data_path(tmp_path):
    net = OnnxNet()
    value = net.node("Constant", [], value=numpy_helper.from_array(np.array(2.5, np.float64)))
    like = net.node("CastLike", [value, "x"])
    cast = net.node("Cast", [net.const(np.array(3, np.int64))], to=1)
    graph = fold_constants(graph_of(net, net.node("Add", [net.node("Mul", ["x", like]), cast]), tmp_path))
    assert ops(graph) == ["Mul", "Add"]
    assert graph.constants[like].dtype == np.float32 and float(graph.constants[like]) == 2.5
    assert graph.constants[cast].dtype == np.float32 and float(graph.constants[cast]) == 3.0


def test_remove_identities_rewires_readers_and_the_output(tmp_path):
    net = OnnxNet()
    relu = net.node("Relu", [net.node("Identity", [net.node("Dropout", ["x"])])], name="relu")
    graph = remove_identities(graph_of(net, net.node("Identity", [relu]), tmp_path))
    assert ops(graph) == ["Relu"] and graph.nodes[0].inputs == ("x",) and graph.output == relu


def test_remove_identities_refuses_a_training_dropout(tmp_path):
    net = OnnxNet()
    out = net.node("Dropout", ["x", net.const(np.array(0.5, np.float32)), net.const(np.array(True))], name="drop")
    with pytest.raises(UserError, match="node 'drop' \\(Dropout\\): training mode is not supported"):
        remove_identities(graph_of(net, out, tmp_path))


def test_remove_unused_drops_dead_branches(tmp_path):
    net = OnnxNet()
    net.node("Relu", ["x"], name="dead")
    graph = remove_unused(graph_of(net, net.node("Sigmoid", ["x"], name="live"), tmp_path))
    assert [node.name for node in graph.nodes] == ["live"]


def test_drop_output_softmax(tmp_path):
    net = OnnxNet(input_shape=(1, 4))
    gemm = net.gemm("x", 4, 3)
    graph = drop_output_softmax(graph_of(net, net.node("LogSoftmax", [gemm], axis=1), tmp_path))
    assert ops(graph) == ["Gemm"] and graph.output == gemm
    net = OnnxNet(input_shape=(1, 4))
    inner = net.node("Softmax", ["x"], name="soft", axis=1)
    with pytest.raises(UserError, match="node 'soft' \\(Softmax\\): only supported as the last node"):
        drop_output_softmax(graph_of(net, net.gemm(inner, 4, 3), tmp_path))


def test_conv_becomes_a_conv_map_with_2d_geometry(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 7, 6))
    out = net.node("Conv", ["x", net.const(np.ones((4, 1, 3, 2)))], kernel_shape=[3, 2], strides=[2, 1],
                   auto_pad="SAME_UPPER", group=2, dilations=[1, 1])
    (node,) = to_linear_maps(graph_of(net, out, tmp_path)).nodes
    assert node.op == "ConvMap" and node.origin == "Conv"
    attributes = node.attributes
    assert (attributes["stride"], attributes["padding"], attributes["dilation"], attributes["groups"]) == (
        (2, 1), (1, 0, 1, 1), (1, 1), 2)
    assert attributes["weight"].dtype == np.float64 and np.all(attributes["bias"] == 0)


def test_a_1d_conv_reads_as_height_1(tmp_path):
    net = OnnxNet(input_shape=(1, 3, 9))
    (node,) = to_linear_maps(graph_of(net, net.conv("x", 3, 4, k=3, stride=2, pad=1, dilation=2, rank=1),
                                      tmp_path)).nodes
    assert node.attributes["weight"].shape == (4, 3, 1, 3)
    assert (node.attributes["stride"], node.attributes["padding"], node.attributes["dilation"]) == (
        (1, 2), (0, 1, 0, 1), (1, 2))


def test_gemm_and_matmul_become_dense_maps(tmp_path):
    net = OnnxNet(input_shape=(1, 3))
    matrix = np.arange(6.0).reshape(3, 2)
    gemm = net.node("Gemm", ["x", net.const(matrix), net.const(np.array([1.0, 2.0]))], alpha=2.0, beta=0.5)
    mm = net.node("MatMul", [gemm, net.const(np.ones((2, 5)))])
    first, second = to_linear_maps(graph_of(net, mm, tmp_path)).nodes
    np.testing.assert_allclose(first.attributes["weight"], 2.0 * matrix.T)
    np.testing.assert_allclose(first.attributes["bias"], [0.5, 1.0])
    assert second.attributes["weight"].shape == (5, 2) and np.all(second.attributes["bias"] == 0)


def test_fold_batchnorm_uses_the_models_epsilon_in_1d_too(tmp_path):
    net = OnnxNet(input_shape=(1, 3, 5))
    graph = graph_of(net, net.bn("x", 3, epsilon=0.3), tmp_path)
    gamma, beta, mean, var = (graph.constants[name] for name in graph.nodes[0].inputs[1:])
    (node,) = fold_batchnorm(graph).nodes
    scale = gamma / np.sqrt(var.astype(np.float64) + 0.3)
    np.testing.assert_allclose(node.attributes["scale"], scale, rtol=1e-6)
    np.testing.assert_allclose(node.attributes["shift"], beta - scale * mean, rtol=1e-6)


@pytest.mark.parametrize("op, data_first, scale, shift", [
    ("Add", True, [1, 1], [2, 3]), ("Add", False, [1, 1], [2, 3]), ("Sub", True, [1, 1], [-2, -3]),
    ("Sub", False, [-1, -1], [2, 3]), ("Mul", False, [2, 3], [0, 0]), ("Div", True, [0.5, 1 / 3], [0, 0])])
def test_constant_arithmetic_becomes_a_channel_affine(tmp_path, op, data_first, scale, shift):
    net = OnnxNet(input_shape=(1, 2, 3, 3))
    constant = net.const(np.array([2.0, 3.0]).reshape(2, 1, 1))
    (node,) = constant_arithmetic(graph_of(net, net.node(op, ["x", constant] if data_first else [constant, "x"]),
                                           tmp_path)).nodes
    assert node.op == "ChannelAffine" and node.inputs == ("x",)
    np.testing.assert_allclose(node.attributes["scale"], scale)
    np.testing.assert_allclose(node.attributes["shift"], shift)


def test_a_scalar_constant_applies_to_every_channel_and_an_add_of_tensors_stays(tmp_path):
    net = OnnxNet(input_shape=(1, 3))
    scaled = net.node("Div", ["x", net.const(np.array(4.0))])
    graph = constant_arithmetic(graph_of(net, net.node("Add", [scaled, "x"]), tmp_path))
    assert ops(graph) == ["ChannelAffine", "Add"]
    np.testing.assert_allclose(graph.nodes[0].attributes["scale"], [0.25] * 3)


def test_clipped_relu_reads_relu_clip_and_relu_min(tmp_path):
    net = OnnxNet()
    relu = net.node("Relu", ["x"], name="relu")
    low, high = net.const(np.array(0.0)), net.const(np.array(6.0))
    clip = net.node("Clip", [net.node("Relu", [relu], name="relu2"), low, high], name="clip")
    out = net.node("Min", [net.node("Relu", [clip], name="relu3"), net.const(np.array(3.0))], name="min")
    graph = clipped_relu(graph_of(net, out, tmp_path))
    assert [(n.name, n.op, n.attributes["clip"]) for n in graph.nodes] == [
        ("relu", "Activation", None), ("relu2", "Activation", None), ("clip", "Activation", 6.0),
        ("relu3", "Activation", 3.0)]
    assert graph.nodes[-1].output == out


@pytest.mark.parametrize("build, message", [
    (lambda n: n.node("Clip", ["x", n.const(np.array(-1.0)), n.const(np.array(1.0))], name="bad"),
     "node 'bad' \\(Clip\\): only a clipped ReLU \\(min = 0\\) is supported, got min -1.0"),
    (lambda n: n.node("Min", ["x", n.const(np.array(1.0))], name="bad"),
     "node 'bad' \\(Min\\): only supported right after a Relu"),
])
def test_clipped_relu_refuses_other_clips(tmp_path, build, message):
    net = OnnxNet()
    with pytest.raises(UserError, match=message):
        clipped_relu(graph_of(net, build(net), tmp_path))
