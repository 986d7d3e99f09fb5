#!/usr/bin/env python
"""Train the bundled Fashion-MNIST networks and export each with both PyTorch ONNX exporters.

    tools/fetch_fashion.sh && .venv/bin/python tools/prepare_fashion.py
    .venv/bin/python tools/train_fashion.py [--only resnet vgg ...]

Reads build/fashion/fashion_train.npz and fashion_test.npz (tools/prepare_fashion.py) and the bundled
ecc_hw/data/fashion/fashion_test.npz. For each recipe of ``RECIPES`` (architectures of
``ecc_hw.architectures.build_fashion_model``) writes (committed), in ecc_hw/data/fashion/:
- ``NAME.onnx``: the legacy TorchScript exporter (``dynamo=False``), opset 13, ``do_constant_folding=False``
  (BatchNormalization nodes kept), dynamic batch axis ``N``;
- ``NAME_dynamo.onnx``: the dynamo exporter (``dynamo=True``), opset 18, its default graph optimisation (which
  folds BatchNorm into the convolutions), dynamic batch axis ``N``, weights embedded (no .onnx.data file);
- ``models.json``: per file its architecture, exporter, parameter count, training recipe and the accuracy of
  onnxruntime on the 1,000 bundled test images (``correct`` images), plus torch accuracies on all 10,000.
Doc strings and metadata are stripped from both files (dynamo's node metadata holds local paths).

Every model takes raw 0..255 pixels as float32 (N,1,28,28) and divides by 255 itself (its first node, a
constant Div). QCFS activations are exported as Clip(0, theta) (``activation_modules()``'s Export), with
the model metadata entry ``ecc_hw.qcfs_levels``, like ``ecc-hw train --act qcfs``.
With ``--only``, the other entries of an existing models.json are kept.
"""
from __future__ import annotations

import argparse
import collections
import copy
import json
import time
import warnings

import numpy as np
from prepare_fashion import BUNDLE, TEST_NPZ, TRAIN_NPZ
from train_mnist import strip_onnx

from ecc_hw.architectures import activation_modules, build_fashion_model
from ecc_hw.train import LEVELS_KEY

MODELS_JSON = BUNDLE / "models.json"
BUNDLED_TEST = BUNDLE / "fashion_test.npz"
LEGACY_OPSET = 13
DYNAMO_OPSET = 18
RECIPE = dict(act="relu", levels=None, epochs=6, subset=30_000, batch=128, lr=3e-3, seed=0)
RECIPES = {
    "vgg": dict(RECIPE, arch="vgg"),
    "resnet": dict(RECIPE, arch="resnet"),
    "densenet": dict(RECIPE, arch="densenet"),
    "maxpool": dict(RECIPE, arch="maxpool"),
    "depthwise": dict(RECIPE, arch="depthwise"),
    "resnet_qcfs4": dict(RECIPE, arch="resnet", act="qcfs", levels=4),
    "resnet_qcfs16": dict(RECIPE, arch="resnet", act="qcfs", levels=16),  # L = 2^4: radix at T = 4
}


def load(path) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 raw 0..255, y int64) of a Fashion-MNIST .npz."""
    with np.load(path) as archive:
        return archive["x"].astype(np.float32), archive["y"]


def torch_logits(model, x: np.ndarray, batch: int = 500) -> np.ndarray:
    """Logits of ``model`` (put in eval mode) on ``x``, in batches."""
    import torch

    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch])).numpy() for i in range(0, len(x), batch)])


def fit(recipe: dict, x: np.ndarray, y: np.ndarray):
    """Train a fresh model of ``recipe`` on the first ``recipe['subset']`` images of (x, y); return it."""
    import torch

    torch.manual_seed(recipe["seed"])
    model = build_fashion_model(recipe["arch"], act=recipe["act"], levels=recipe["levels"] or 4)
    xtr = torch.from_numpy(x[:recipe["subset"]])
    ytr = torch.from_numpy(y[:recipe["subset"]])
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe["epochs"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    for epoch in range(recipe["epochs"]):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), recipe["batch"]):
            idx = perm[i:i + recipe["batch"]]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"  epoch {epoch + 1}: loss {total / len(xtr):.4f}", flush=True)
    return model.eval()


def export_module(model):
    """A copy of ``model`` in eval mode with every QCFS activation replaced by Clip(0, theta); the thetas."""
    _, _, Export = activation_modules()
    export = copy.deepcopy(model).eval()
    thetas = []
    for name, module in list(export.named_modules()):
        if type(module).__name__ == "QCFS":  # each activation_modules() call defines a new class
            parent, _, child = name.rpartition(".")
            thetas.append(float(module.theta.detach()))
            setattr(export.get_submodule(parent), child, Export(thetas[-1]))
    return export, thetas


def export_both(export, stem: str, levels: int | None) -> dict:
    """Write ``stem``.onnx (legacy) and ``stem``_dynamo.onnx (dynamo) of module ``export``; {file: ModelProto}."""
    import onnx
    import torch

    legacy_path, dynamo_path = BUNDLE / f"{stem}.onnx", BUNDLE / f"{stem}_dynamo.onnx"
    example = (torch.zeros(1, 1, 28, 28),)
    torch.onnx.export(export, example, str(legacy_path), dynamo=False, opset_version=LEGACY_OPSET,
                      do_constant_folding=False, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    program = torch.onnx.export(export, example, dynamo=True, opset_version=DYNAMO_OPSET, input_names=["x"],
                                output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("N")},))
    protos = {legacy_path: onnx.load(str(legacy_path)), dynamo_path: program.model_proto}
    for path, proto in protos.items():
        strip_onnx(proto)
        if levels is not None:
            entry = proto.metadata_props.add()
            entry.key, entry.value = LEVELS_KEY, str(levels)
        onnx.checker.check_model(proto, full_check=True)
        data = proto.SerializeToString()
        assert b"/work" not in data and b"site-packages" not in data, f"{path.name} holds a local path"
        path.write_bytes(data)
    return {path.name: proto for path, proto in protos.items()}


def onnx_logits(path, x: np.ndarray) -> np.ndarray:
    """onnxruntime (CPU) logits of the ONNX file ``path`` on ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"x": x})[0]


def run(name: str, recipe: dict, train: tuple, test: tuple, bundled: tuple) -> dict:
    """Train, export and check recipe ``name``; the models.json entries of its two files."""
    import torch

    print(f"{name}: {recipe}", flush=True)
    start = time.monotonic()
    model = fit(recipe, *train)
    seconds = time.monotonic() - start
    export, thetas = export_module(model)
    torch_test = float((torch_logits(model, test[0]).argmax(1) == test[1]).mean())
    export_test = float((torch_logits(export, test[0]).argmax(1) == test[1]).mean())
    reference = torch_logits(export, bundled[0])
    protos = export_both(export, name, recipe["levels"])
    logits = {}
    entries = {}
    for file, proto in protos.items():
        logits[file] = onnx_logits(BUNDLE / file, bundled[0])
        np.testing.assert_allclose(logits[file], reference, rtol=1e-4, atol=1e-4)
        correct = int((logits[file].argmax(1) == bundled[1]).sum())
        entries[file] = dict(
            model=name, architecture=recipe["arch"], activation=recipe["act"], qcfs_levels=recipe["levels"],
            qcfs_thetas=[round(t, 6) for t in thetas] or None,
            exporter="dynamo" if file.endswith("_dynamo.onnx") else "legacy",
            opset=proto.opset_import[0].version, parameters=sum(p.numel() for p in model.parameters()),
            training=dict(optimizer="Adam", schedule="cosine per epoch", loss="cross-entropy",
                          **{k: recipe[k] for k in ("epochs", "subset", "batch", "lr", "seed")},
                          cpu_threads=torch.get_num_threads(), wall_seconds=round(seconds, 1)),
            ops=dict(sorted(collections.Counter(n.op_type for n in proto.graph.node).items())),
            correct=correct, accuracy=correct / len(bundled[1]),
            torch_accuracy_test10000=torch_test, torch_clip_accuracy_test10000=export_test,
            bytes=(BUNDLE / file).stat().st_size)
        print(f"  {file}: {correct} / {len(bundled[1])} correct; ops {entries[file]['ops']}")
    first, second = logits.values()
    assert np.array_equal(first.argmax(1), second.argmax(1)), f"{name}: the two exporters disagree on argmax"
    print(f"  trained in {seconds:.0f} s; torch 10,000 test: {torch_test:.4f} (as exported: {export_test:.4f})")
    return entries


def main(argv=None) -> int:
    """Train and export the recipes (all, or ``--only`` some) and write models.json."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--only", nargs="+", choices=sorted(RECIPES), help="recipes to (re)train; default all")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # on a shared 2-core machine one thread trains several times faster than two
    torch.use_deterministic_algorithms(True)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    train, test, bundled = load(TRAIN_NPZ), load(TEST_NPZ), load(BUNDLED_TEST)
    record = json.loads(MODELS_JSON.read_text()) if args.only and MODELS_JSON.is_file() else {}
    models = record.get("models", {})
    start = time.monotonic()
    for name in args.only or RECIPES:
        models.update(run(name, RECIPES[name], train, test, bundled))
    record = dict(
        input="x float32 (N,1,28,28), raw pixels 0..255 (each model divides by 255 first); output logits (N,10)",
        test_data="fashion_test.npz (1,000 held-out images); accuracy = correct / 1000, onnxruntime CPU",
        torch_version=torch.__version__.split("+")[0],
        models=dict(sorted(models.items())))
    MODELS_JSON.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {MODELS_JSON}; total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
