"""The bundled Fashion-MNIST subset and models (ecc_hw/data/fashion/): shapes, valid ONNX, recorded accuracies.

No torch: the models are run with onnxruntime, as ``tools/train_fashion.py`` did when it wrote models.json.
"""
import functools
import json

import numpy as np
import onnx
import onnxruntime
import pytest

from ecc_hw.data import PACKAGE_DATA

FASHION = PACKAGE_DATA / "fashion"
RECORD = json.loads((FASHION / "models.json").read_text())
FILES = sorted(RECORD["models"])
MODELS = sorted({entry["model"] for entry in RECORD["models"].values()})


@functools.cache
def _arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FASHION / name, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["x", "y"]
        return archive["x"], archive["y"]


@functools.cache
def _logits(file: str) -> np.ndarray:
    x, _ = _arrays("fashion_test.npz")
    session = onnxruntime.InferenceSession(str(FASHION / file), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"x": x.astype(np.float32)})[0]


@pytest.mark.parametrize("name, count", [("fashion_test.npz", 1000), ("fashion_calib.npz", 500)])
def test_bundled_images_are_uint8_pixels_of_all_ten_classes(name, count):
    x, y = _arrays(name)
    assert x.shape == (count, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (count,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))
    assert x.max() == 255 and x.min() == 0


def test_no_test_image_is_a_calibration_image():
    test = {image.tobytes() for image in _arrays("fashion_test.npz")[0]}
    calib = {image.tobytes() for image in _arrays("fashion_calib.npz")[0]}
    assert len(test) == 1000 and len(calib) == 500
    assert not test & calib


def test_every_model_file_is_recorded_and_the_folder_is_small():
    assert sorted(path.name for path in FASHION.glob("*.onnx")) == FILES
    assert not list(FASHION.glob("*.data")), "weights must be embedded in the .onnx files"
    assert {entry["exporter"] for entry in RECORD["models"].values()} == {"legacy", "dynamo"}
    assert (FASHION / "ATTRIBUTION.md").is_file()
    assert sum(path.stat().st_size for path in FASHION.iterdir()) < 3_000_000


@pytest.mark.parametrize("file", FILES)
def test_model_is_valid_onnx_and_reproduces_its_recorded_accuracy(file):
    entry = RECORD["models"][file]
    proto = onnx.load(str(FASHION / file))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["logits"]
    readers = [node for node in proto.graph.node if "x" in node.input]
    assert [node.op_type for node in readers] == ["Div"], "the model scales raw 0..255 pixels itself"
    constants = {tensor.name: tensor for tensor in proto.graph.initializer}
    constants.update({node.output[0]: node.attribute[0].t for node in proto.graph.node if node.op_type == "Constant"})
    assert onnx.numpy_helper.to_array(constants[readers[0].input[1]]) == 255
    assert all(not node.metadata_props and not node.doc_string for node in proto.graph.node)
    assert proto.opset_import[0].version == entry["opset"]
    _, y = _arrays("fashion_test.npz")
    correct = int((_logits(file).argmax(1) == y).sum())
    assert correct == entry["correct"]
    assert entry["accuracy"] == correct / len(y)


@pytest.mark.parametrize("model", MODELS)
def test_both_exporters_agree_on_every_test_image(model):
    files = sorted(file for file, entry in RECORD["models"].items() if entry["model"] == model)
    assert files == [f"{model}.onnx", f"{model}_dynamo.onnx"]
    np.testing.assert_array_equal(_logits(files[0]).argmax(1), _logits(files[1]).argmax(1))
