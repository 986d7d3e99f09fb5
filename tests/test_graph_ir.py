"""load_graph: checked, shape-inferred, batch 1, external data; its failures are one line naming the file."""
from pathlib import Path

import numpy as np
import onnx
import pytest
from test_graph_builders import OnnxNet, graph_of, ops

from ecc_hw.errors import UserError
from ecc_hw.graph.ir import load_graph

FIXTURES = Path(__file__).parent / "fixtures" / "graph"


def test_a_dynamic_batch_is_read_as_one():
    graph = load_graph(FIXTURES / "resnet_legacy.onnx")
    assert graph.shapes[graph.input] == (1, 1, 14, 14)
    assert all(graph.shapes[node.output][0] == 1 for node in graph.nodes if node.op in ("Conv", "Relu", "Add"))
    assert graph.opset == 17 and graph.output == "logits"


def test_nodes_constants_and_consumers(tmp_path):
    net = OnnxNet()
    conv = net.conv("x", 2, 3, name="conv")
    relu = net.node("Relu", [conv], name="relu")
    graph = graph_of(net, net.node("Flatten", [relu], name="flat"), tmp_path)
    assert ops(graph) == ["Conv", "Relu", "Flatten"]
    assert graph.data_inputs(graph.nodes[0]) == ["x"]
    assert sorted(graph.constant_inputs(graph.nodes[0])) == [1, 2]
    assert graph.consumers[conv][0].name == "relu" and graph.producers[relu].name == "relu"
    assert graph.shapes[conv] == (1, 3, 6, 6) and graph.dtypes[conv] == np.float32
    assert graph.nodes[0].describe() == "node 'conv' (Conv)"


def test_input_shape_overrides_the_declared_one(tmp_path):
    net = OnnxNet(input_shape=("N", 2, "H", "W"))
    path = net.save(tmp_path / "dyn.onnx", net.node("Relu", [net.conv("x", 2, 3)]))
    with pytest.raises(UserError, match="cannot infer the shape of input 'x'") as error:
        load_graph(path)
    assert error.value.field == "input_shape"
    assert load_graph(path, input_shape=(2, 5, 4)).shapes["x"] == (1, 2, 5, 4)


def test_external_data_is_read_from_the_models_folder(tmp_path, monkeypatch):
    net = OnnxNet()
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path = net.save(model_dir / "m.onnx", net.conv("x", 2, 16, k=3))
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    assert (model_dir / "m.onnx.data").exists()
    monkeypatch.chdir(tmp_path)
    graph = load_graph(path)
    weight = next(v for v in graph.constants.values() if v.ndim == 4)
    assert weight.shape == (16, 2, 3, 3) and np.any(weight != 0)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), (b"not a model", "not a readable ONNX model")])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as error:
        load_graph(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_the_checker_and_shape_inference_are_run(tmp_path):
    net = OnnxNet()
    net.nodes.append(onnx.helper.make_node("Relu", ["missing"], ["y"], name="r"))
    graph = onnx.helper.make_graph(net.nodes, "g", [onnx.helper.make_tensor_value_info("x", 1, [1, 2, 6, 6])],
                                   [onnx.helper.make_tensor_value_info("y", 1, [1, 2, 6, 6])])
    path = tmp_path / "unchecked.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UserError, match="ONNX checker rejects the model"):
        load_graph(path)
    net = OnnxNet()
    net.nodes.append(onnx.helper.make_node("MatMul", ["x", net.const(np.ones((5, 3)))], ["z"], name="m"))
    graph = onnx.helper.make_graph(net.nodes, "g", [onnx.helper.make_tensor_value_info("x", 1, [1, 2, 6, 6])],
                                   [onnx.helper.make_tensor_value_info("z", 1, [1, 5])], net.initializers)
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UserError, match="ONNX shape inference failed"):
        load_graph(path)


def test_two_data_inputs_are_refused(tmp_path):
    net = OnnxNet()
    add = onnx.helper.make_node("Add", ["x", "x2"], ["y"], name="add")
    graph = onnx.helper.make_graph([add], "g", [onnx.helper.make_tensor_value_info(n, 1, [1, 2]) for n in ("x", "x2")],
                                   [onnx.helper.make_tensor_value_info("y", 1, [1, 2])])
    path = tmp_path / "two.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", net.opset)]), str(path))
    with pytest.raises(UserError, match=r"expected one data input, found 2 \(\['x', 'x2'\]\)"):
        load_graph(path)
