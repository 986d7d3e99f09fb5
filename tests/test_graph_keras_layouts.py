"""Third-party exports (docs/arithmetic.md 5.7): Keras layouts, a fixed batch, stale declared shapes.

The models are written here with onnx.helper the way onnxmltools / tf2onnx and old PyTorch exporters
write them; our float forward pass must equal onnxruntime's (argmax, and logits within 1e-4) on
random inputs of any batch. The refusals that stay (quantisation ops, Selu, Sigmoid) are one line.
"""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from test_graph_builders import OnnxNet, onnxruntime_output

from ecc_hw.errors import UserError
from ecc_hw.graph.forward import forward
from ecc_hw.graph.ir import load_graph
from ecc_hw.graph.pipeline import convert_graph

STALE_BATCH = 789444


def keras_dense(net, x, f_in, f_out, name=None):
    """A Keras Dense as onnxmltools writes it: MatMul by a (F_in, F_out) kernel, then Add of the bias."""
    product = net.node("MatMul", [x, net.const(net.weights(f_in, f_out))], name=name)
    return net.node("Add", [product, net.const(net.weights(f_out, scale=0.1))])


def assert_forward_equals_onnxruntime(network, path, images=6, seed=1):
    """Our logits equal onnxruntime's (run one image at a time) on ``images`` random inputs."""
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (images, *network.input.model_shape))
    expected = onnxruntime_output(path, x)
    logits = forward(network, x).logits
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert np.array_equal(logits.argmax(1), expected.argmax(1))


def test_a_keras_conv2d_with_a_fixed_batch_and_flatten_axis_0(tmp_path):
    net = OnnxNet(input_shape=(1, 8, 8, 2))
    nchw = net.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    features = net.node("Relu", [net.conv(nchw, 2, 3)])
    channels_last = net.node("Transpose", [features], perm=[0, 2, 3, 1])
    dropout = net.node("Identity", [channels_last])
    flat = net.node("Flatten", [dropout], name="keras_flatten", axis=0)
    path = net.save(tmp_path / "conv2d_keras.onnx", keras_dense(net, flat, 192, 5))
    network = convert_graph(path)
    assert (network.input.layout, network.input.model_shape, network.input.shape) == ("NHWC", (8, 8, 2), (2, 8, 8))
    assert_forward_equals_onnxruntime(network, path, images=7)


def test_a_keras_conv1d_reads_its_nlc_input_channel_major(tmp_path):
    net = OnnxNet(input_shape=(1, 10, 4))
    ncl = net.node("Transpose", ["x"], perm=[0, 2, 1])
    features = net.node("Relu", [net.conv(ncl, 4, 3, k=4, rank=1)])
    features = net.node("Relu", [net.conv(features, 3, 2, k=3, rank=1)])
    channels_last = net.node("Transpose", [features], perm=[0, 2, 1])
    flat = net.node("Flatten", [channels_last], axis=0)
    path = net.save(tmp_path / "conv1d_keras.onnx", keras_dense(net, flat, 2 * 11, 5))
    network = convert_graph(path)
    assert (network.input.layout, network.input.model_shape, network.input.shape) == ("NLC", (10, 4), (4, 1, 10))
    assert network.layers[0].output_shape == (3, 1, 11)
    assert_forward_equals_onnxruntime(network, path, images=5)


def test_a_flatten_axis_0_over_a_dynamic_batch_is_read_at_batch_1(tmp_path):
    net = OnnxNet(input_shape=("N", 2, 4, 4))
    flat = net.node("Flatten", [net.node("Relu", [net.conv("x", 2, 3)])], axis=0)
    path = net.save(tmp_path / "flatten0.onnx", net.gemm(flat, 48, 4))
    assert_forward_equals_onnxruntime(convert_graph(path), path)


def _with_stale_shapes(path, batch):
    """The model at ``path`` as an old exporter leaves it: input, outputs and every intermediate tensor
    declared with a fixed ``batch``."""
    model = onnx.load(str(path))
    inferred = onnx.shape_inference.infer_shapes(model)
    model.graph.value_info.extend(inferred.graph.value_info)
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        dims = value.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_value = batch
    onnx.checker.check_model(model)
    stale = path.with_name("stale_" + path.name)
    onnx.save(model, str(stale))
    return stale


def _pytorch_mlp(tmp_path, features=16):
    """Gemm/ReLU layers with a BatchNormalization between Unsqueeze and Squeeze (PyTorch's BatchNorm1d)."""
    net = OnnxNet(input_shape=(1, features))
    hidden = net.node("Unsqueeze", [net.gemm("x", features, 12), net.const(np.array([2]))])
    hidden = net.node("Squeeze", [net.bn(hidden, 12), net.const(np.array([2]))])
    hidden = net.node("Relu", [hidden])
    return net.save(tmp_path / "mlp.onnx", net.gemm(net.node("Relu", [net.gemm(hidden, 12, 8)]), 8, 5)), net


def test_stale_declared_shapes_with_a_wrong_batch_are_ignored(tmp_path):
    clean, _ = _pytorch_mlp(tmp_path)
    stale = _with_stale_shapes(clean, STALE_BATCH)
    graph = load_graph(stale)
    assert graph.shapes[graph.input] == (1, 16) and graph.shapes[graph.output] == (1, 5)
    assert all(graph.shapes[node.output][0] == 1 for node in graph.nodes)
    network = convert_graph(stale)
    assert network.input.layout == "NF"
    assert_forward_equals_onnxruntime(network, clean)


def test_an_input_shape_overrides_stale_declared_shapes(tmp_path):
    net = OnnxNet(input_shape=(1, 2, 6, 6))
    pooled = net.node("GlobalAveragePool", [net.node("Relu", [net.conv("x", 2, 3)])])
    clean = net.save(tmp_path / "gap.onnx", net.gemm(net.node("Flatten", [pooled]), 3, 4))
    graph = load_graph(_with_stale_shapes(clean, STALE_BATCH), input_shape=(2, 10, 8))
    conv = graph.nodes[0].output
    assert graph.shapes[graph.input] == (1, 2, 10, 8) and graph.shapes[conv] == (1, 3, 10, 8)
    assert graph.shapes[graph.output] == (1, 4)


def _keras_batchnorm(net, x, features, name):
    """A Keras BatchNormalization of (1, F) features as onnxmltools writes it: Transpose to (F, 1), a
    BatchNormalization with F-element statistics, Transpose back."""
    transposed = net.node("Transpose", [x], name=f"{name}_in")
    return net.node("Transpose", [net.bn(transposed, features, name=name, epsilon=1e-3)], name=f"{name}_out")


def _keras_bn_mlp(keras_style, tmp_path):
    """The same seeded Keras MLP with its BatchNormalizations written the Keras way or directly on (1, F),
    at opset 9 as onnxmltools writes it (from opset 14 on, ONNX shape inference refuses the Keras way)."""
    net = OnnxNet(input_shape=(1, 10), seed=3, opset=9)
    norm = (lambda x, f, name: _keras_batchnorm(net, x, f, name)) if keras_style else (
        lambda x, f, name: net.bn(x, f, name=name, epsilon=1e-3))
    hidden = net.node("Relu", [norm(keras_dense(net, "x", 10, 12), 12, "bn1")])
    hidden = net.node("Relu", [norm(keras_dense(net, hidden, 12, 8), 8, "bn2")])
    logits = norm(keras_dense(net, hidden, 8, 4), 4, "bn3")
    return net.save(tmp_path / f"bn_{'keras' if keras_style else 'plain'}.onnx", logits)


def test_a_keras_batchnorm_between_transposes_is_one_per_feature(tmp_path):
    # onnxruntime refuses the Keras form (its axis 1 has one channel, the statistics F values), so the
    # reference is the same network with the BatchNormalizations applied to the (1, F) features directly.
    keras, plain = _keras_bn_mlp(True, tmp_path), _keras_bn_mlp(False, tmp_path)
    network = convert_graph(keras)
    assert [layer.output_shape for layer in network.layers] == [(12, 1, 1), (8, 1, 1), (4, 1, 1)]
    assert_forward_equals_onnxruntime(network, plain, images=9)


def test_a_keras_batchnorm_between_transposes_from_opset_14_is_refused_in_one_line(tmp_path):
    net = OnnxNet(input_shape=(1, 6))
    net.nodes.append(helper.make_node("Transpose", ["x"], ["features_t"], name="t"))
    stats = [net.const(np.ones(6)) for _ in range(4)]
    net.nodes.append(helper.make_node("BatchNormalization", ["features_t", *stats], ["normed"], name="bn"))
    graph = helper.make_graph(net.nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 6))],
                              [helper.make_tensor_value_info("normed", TensorProto.FLOAT, (6, 1))], net.initializers)
    path = tmp_path / "bn14.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]), str(path))
    with pytest.raises(UserError, match="ONNX shape inference failed: .*BatchNormalization") as error:
        convert_graph(path)
    assert "\n" not in str(error.value)


def test_a_transpose_of_features_without_the_batchnorm_still_moves_the_batch(tmp_path):
    net = OnnxNet(input_shape=(1, 6))
    swapped = net.node("Transpose", [net.node("Relu", [net.gemm("x", 6, 4)])], name="swap")
    path = net.save(tmp_path / "swap.onnx", net.node("Flatten", [swapped]))
    with pytest.raises(UserError, match="node 'swap' \\(Transpose\\): changes the batch axis") as error:
        convert_graph(path)
    assert "\n" not in str(error.value)


def _custom_domain_model(path, domain, op, on_weights, import_domain=True):
    """A dense ReLU net with one node of a quantisation op from ``domain``: on the weights (constant
    inputs) or on the data."""
    net = OnnxNet(input_shape=(1, 6))
    weight = net.const(net.weights(4, 6))
    quantised = f"{op}_out"
    quant_input = weight if on_weights else "x"
    net.nodes.append(helper.make_node(op, [quant_input, net.const(np.array(0.5))], [quantised], name="quant",
                                      domain=domain))
    dense_input, dense_weight = ("x", quantised) if on_weights else (quantised, weight)
    out = net.node("Relu", [net.node("Gemm", [dense_input, dense_weight], transB=1)])
    graph = helper.make_graph(net.nodes, "quant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 6))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, (1, 4))], net.initializers)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if import_domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("domain, op, on_weights, import_domain, message", [
    ("onnx.brevitas", "BipolarQuant", True, True, "node 'quant' (onnx.brevitas.BipolarQuant): cannot evaluate"),
    ("qonnx.custom_op.general", "Quant", False, True,
     "node 'quant' (qonnx.custom_op.general.Quant): op qonnx.custom_op.general.Quant is not supported"),
    ("qonnx.custom_op.general", "Quant", False, False,
     "node 'quant' (qonnx.custom_op.general.Quant): op qonnx.custom_op.general.Quant is not supported (its domain"),
])
def test_quantisation_ops_are_refused_in_one_line(tmp_path, domain, op, on_weights, import_domain, message):
    path = _custom_domain_model(tmp_path / "quant.onnx", domain, op, on_weights, import_domain)
    with pytest.raises(UserError) as error:
        convert_graph(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


@pytest.mark.parametrize("op", ["Selu", "Sigmoid"])
def test_other_activations_are_refused_in_one_line(tmp_path, op):
    net = OnnxNet(input_shape=(1, 8, 8, 1))
    nchw = net.node("Transpose", ["x"], perm=[0, 3, 1, 2])
    activation = net.node(op, [net.conv(nchw, 1, 2)], name="act")
    path = net.save(tmp_path / "act.onnx", net.gemm(net.node("Flatten", [activation]), 128, 3))
    with pytest.raises(UserError) as error:
        convert_graph(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"{path}: node 'act' ({op}): op {op} is not supported"), text
