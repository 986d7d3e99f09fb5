"""Real exporter graphs load, and our float64 CNN equals onnxruntime on each of them."""
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from ecc_hw import cnn, onnx_frontend
from ecc_hw.data import BUNDLED_MODEL, BUNDLED_TEST
from ecc_hw.errors import UserError
from ecc_hw.passes import convert_graph

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = ["legacy_bn_kept", "legacy_bn_folded", "dynamo_bn_kept", "dynamo_folded", "dynamo_external",
          "digits_signed", "digits_0_16", "matmul_add", "gap_relu_head", "gap_logits_head"]


def onnxruntime_logits(path: Path, x: np.ndarray) -> np.ndarray:
    """Logits from onnxruntime, one image at a time when the graph has a fixed batch of 1."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = session.get_inputs()[0].shape[0]
    if batch == 1:
        return np.concatenate([session.run(None, {name: x[i:i + 1].astype(np.float32)})[0] for i in range(len(x))])
    return session.run(None, {name: x.astype(np.float32)})[0]


@pytest.mark.parametrize("name", MODELS)
def test_cnn_forward_matches_onnxruntime(name):
    path = FIXTURES / f"{name}.onnx"
    archive = np.load(FIXTURES / f"{name}.npz")
    model = onnx_frontend.load(path)
    layers = convert_graph(model)
    ours = cnn.forward(layers, archive["x"])
    theirs = onnxruntime_logits(path, archive["x"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_batchnorm_kept_folds_to_the_same_network_as_the_exporter_folding():
    kept = convert_graph(onnx_frontend.load(FIXTURES / "legacy_bn_kept.onnx"))
    folded = convert_graph(onnx_frontend.load(FIXTURES / "legacy_bn_folded.onnx"))
    assert [layer.kind for layer in kept] == [layer.kind for layer in folded]
    for ours, exporters in zip(kept, folded):
        np.testing.assert_allclose(ours.weight, exporters.weight, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ours.bias, exporters.bias, rtol=1e-5, atol=1e-6)


def test_batchnorm_folding_uses_the_models_epsilon(tmp_path):
    model = onnx.load(str(FIXTURES / "legacy_bn_kept.onnx"))
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            for attribute in node.attribute:
                if attribute.name == "epsilon":
                    attribute.f = 0.5
            if not any(a.name == "epsilon" for a in node.attribute):
                node.attribute.append(onnx.helper.make_attribute("epsilon", 0.5))
    path = tmp_path / "eps.onnx"
    onnx.save(model, str(path))
    x = np.load(FIXTURES / "legacy_bn_kept.npz")["x"]
    ours = cnn.forward(convert_graph(onnx_frontend.load(path)), x)
    np.testing.assert_allclose(ours, onnxruntime_logits(path, x), rtol=1e-5, atol=1e-5)


def test_bundled_model_matches_onnxruntime():
    x = np.load(BUNDLED_TEST)["x"][:200]
    ours = cnn.forward(convert_graph(onnx_frontend.load(BUNDLED_MODEL)), x)
    np.testing.assert_allclose(ours, onnxruntime_logits(BUNDLED_MODEL, x), rtol=1e-5, atol=1e-5)


def test_pooling_kept_as_a_layer_computes_the_same_cnn():
    x = np.load(BUNDLED_TEST)["x"][:50]
    composed = cnn.forward(convert_graph(onnx_frontend.load(BUNDLED_MODEL), "compose"), x)
    layered_layers = convert_graph(onnx_frontend.load(BUNDLED_MODEL), "layer")
    assert [layer.kind for layer in layered_layers] == ["conv", "pool", "conv", "pool", "dense"]
    np.testing.assert_allclose(cnn.forward(layered_layers, x), composed, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["compose", "layer"])
def test_pooling_heads_become_a_dense_output_layer(mode):
    """A global average pool after the last layer: after a ReLU, a new dense output layer averages
    the last spiking layer; after the logits conv, the two compose into one dense layer. Both
    compute what onnxruntime computes, whether other pools are composed or kept as layers."""
    kinds = {"gap_relu_head": ["conv", "conv", "dense"],
             "gap_logits_head": ["conv", "dense"] if mode == "compose" else ["conv", "pool", "dense"]}
    for name, expected in kinds.items():
        path = FIXTURES / f"{name}.onnx"
        x = np.load(FIXTURES / f"{name}.npz")["x"]
        layers = convert_graph(onnx_frontend.load(path), mode)
        assert [layer.kind for layer in layers] == expected
        assert layers[-1].output_shape == (10, 1, 1) and not layers[-1].relu
        np.testing.assert_allclose(cnn.forward(layers, x), onnxruntime_logits(path, x), rtol=1e-5, atol=1e-5)


def test_unsupported_op_names_node_op_and_supported_ops():
    with pytest.raises(UserError, match=r"op Sigmoid is not supported \(supported: Conv, Gemm"):
        onnx_frontend.load(FIXTURES / "unsupported_op.onnx")


def test_not_onnx_is_refused():
    with pytest.raises(UserError, match="not_onnx.onnx: not a readable ONNX model"):
        onnx_frontend.load(FIXTURES / "not_onnx.onnx")


def test_symbolic_spatial_shape_asks_for_input_shape(tmp_path):
    model = onnx.load(str(FIXTURES / "legacy_bn_folded.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    path = tmp_path / "symbolic.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UserError, match="symbolic.onnx: cannot infer the .* pass it as C,H,W") as info:
        onnx_frontend.load(path)
    assert info.value.field == "input_shape"   # the CLI writes --input-shape
    loaded = onnx_frontend.load(path, input_shape=(1, 14, 14))
    assert loaded.input_shape == (1, 14, 14)


@pytest.mark.parametrize("opset", [8, 9, 10])
def test_old_opsets_load(tmp_path, opset):
    """Opsets 8-10 (the version converter cannot go down there): the same graph written by hand."""
    source = onnx.load(str(FIXTURES / "legacy_bn_kept.onnx"))
    keep = [n for n in source.graph.node if n.op_type in ("Conv", "BatchNormalization", "Relu", "AveragePool")]
    gemm = next(n for n in source.graph.node if n.op_type == "Gemm")
    flatten = onnx.helper.make_node("Flatten", [keep[-1].output[0]], ["flat"], axis=1, name="flatten")
    gemm = onnx.helper.make_node("Gemm", ["flat", *gemm.input[1:]], list(gemm.output), name="gemm",
                                 **{a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute})
    for node in keep:  # attributes that opsets 8-9 do not know yet
        kept = [a for a in node.attribute if a.name not in ("ceil_mode", "count_include_pad", "training_mode")]
        del node.attribute[:]
        node.attribute.extend(kept)
    used = {name for node in keep + [gemm] for name in node.input}
    graph = onnx.helper.make_graph(keep + [flatten, gemm], "old", list(source.graph.input),
                                   list(source.graph.output),
                                   [init for init in source.graph.initializer if init.name in used])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = 4
    path = tmp_path / f"opset{opset}.onnx"
    onnx.save(model, str(path))
    loaded = onnx_frontend.load(path)
    assert loaded.opset == opset
    x = np.load(FIXTURES / "legacy_bn_kept.npz")["x"]
    np.testing.assert_allclose(cnn.forward(convert_graph(loaded), x), onnxruntime_logits(path, x),
                               rtol=1e-5, atol=1e-5)
