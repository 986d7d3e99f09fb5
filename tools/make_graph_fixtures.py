#!/usr/bin/env python
"""Regenerate the graph-network ONNX fixtures in tests/fixtures/graph/ (the outputs are committed).

    .venv/bin/pip install torch==2.13.0 onnxscript
    .venv/bin/python tools/make_graph_fixtures.py

Each ``NAME.onnx`` is a small network of the shapes docs/arithmetic.md 5 covers (residual Add with a
projection shortcut, Concat, MaxPool before and after ReLU, depthwise convolution, input
normalisation, NHWC, (N, F) and (N, C, L) inputs, the new exporter's unoptimised graph), trained for a
few hundred Adam steps on the first 900 images of the bundled ``ecc_hw/data/mnist_test.npz`` (2x2-averaged
to 14x14, in 0..1) so that its activations are realistic. ``NAME.npz`` holds ``x`` (50 of the last 100
images, float32, in the model's own input layout) and ``y``. Seeded and deterministic (CPU, 2 threads);
doc strings and metadata are stripped. ``tests/fixtures/graph/README.md`` lists them.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
from fixture_models import torch_logits, train
from train_mnist import strip_onnx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "graph"
SEED = 2024
STEPS = 300
N_TRAIN, N_NPZ = 900, 50
ROWS: list[str] = []


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 1,000 MNIST test digits, 14x14 float32 in 0..1 (N, 1, 14, 14), and their labels."""
    archive = np.load(ROOT / "ecc_hw" / "data" / "mnist_test.npz")
    x = archive["x"].astype(np.float64).reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5)) / 255.0
    return x.astype(np.float32), archive["y"].astype(np.int64)


# ---------------------------------------------------------------- networks

def resnet():
    """Stem, one identity block, one down block with a 1x1 stride-2 projection shortcut; BN kept; GAP head."""
    from torch import nn

    def conv_bn(c_in, c_out, k=3, stride=1):
        return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(c_out))

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.body = nn.Sequential(conv_bn(c_in, c_out, stride=stride), nn.ReLU(), conv_bn(c_out, c_out))
            self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else conv_bn(c_in, c_out, 1, stride)

        def forward(self, x):
            return (self.body(x) + self.shortcut(x)).relu()

    return nn.Sequential(conv_bn(1, 8), nn.ReLU(), Block(8, 8, 1), Block(8, 16, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def densenet():
    """Post-activation dense blocks (Concat of ReLU outputs), a 1x1 conv + AvgPool transition, GAP head."""
    import torch
    from torch import nn

    class Dense(nn.Module):
        def __init__(self, c_in, growth):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(c_in, growth, 3, padding=1), nn.BatchNorm2d(growth), nn.ReLU())

        def forward(self, x):
            return torch.cat([x, self.body(x)], dim=1)

    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), Dense(8, 4), Dense(12, 4),
                         nn.Conv2d(16, 12, 1), nn.AvgPool2d(2), nn.BatchNorm2d(12), nn.ReLU(), Dense(12, 4),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def maxpool_cnn():
    """MaxPool after a ReLU, before a BatchNorm + ReLU (kept positive), with padding, and in ceil mode."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),            # 14 -> 7
                         nn.Conv2d(8, 16, 3, padding=1), nn.MaxPool2d(3, 2, padding=1),        # 7 -> 4
                         nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 3, ceil_mode=True),  # -> 2
                         nn.Flatten(), nn.Linear(64, 10))


def depthwise():
    """Depthwise-separable: groups = C convolutions (one stride 2), 1x1 pointwise, ReLU6 (Clip), GAP head."""
    from torch import nn

    def block(c_in, c_out, stride):
        return [nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in), nn.BatchNorm2d(c_in), nn.ReLU(),
                nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU6()]

    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU6(), *block(8, 16, 1), *block(16, 16, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def input_norm():
    """(x - mean) / std in the model (Sub, Div) on raw 0..255 input, a padded conv and a zero Pad + conv."""
    from torch import nn

    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.ZeroPad2d(1),
                                      nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 10))

        def forward(self, x):
            return self.body((x - 33.0) / 78.0)

    return Normalised()


def nhwc():
    """(N, H, W, C) input permuted in the model; a Keras-style permute + flatten in front of the dense layer."""
    from torch import nn

    class Nhwc(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
            self.fc = nn.Linear(7 * 7 * 8, 10)

        def forward(self, x):
            return self.fc(self.body(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1).flatten(1))

    return Nhwc()


def mlp():
    """(N, 196) input: Linear, BatchNorm1d, ReLU, Linear, ReLU, Linear."""
    from torch import nn

    return nn.Sequential(nn.Linear(196, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 10))


def conv1d():
    """(N, C, L) = (N, 14, 14) rows as channels: Conv1d, BatchNorm1d, MaxPool1d, strided Conv1d, mean over L."""
    from torch import nn

    class Conv1d(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv1d(14, 16, 3, padding=1), nn.BatchNorm1d(16), nn.ReLU(), nn.MaxPool1d(2),
                                      nn.Conv1d(16, 16, 3, stride=2, padding=1), nn.ReLU())
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            return self.fc(self.body(x).mean(dim=-1))

    return Conv1d()


def chain():
    """A plain chain: Conv, BN, ReLU clipped by Min, AvgPool, Conv, ReLU6, ceil-mode MaxPool, Linear."""
    import torch
    from torch import nn

    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.pool = nn.Conv2d(4, 8, 3), nn.AvgPool2d(2)
            self.maxpool, self.fc = nn.MaxPool2d(2, ceil_mode=True), nn.Linear(8 * 3 * 3, 10)

        def forward(self, x):
            x = self.pool(torch.minimum(torch.relu(self.bn1(self.conv1(x))), torch.tensor(4.0)))
            return self.fc(self.maxpool(nn.functional.relu6(self.conv2(x))).flatten(1))

    return Chain()


# ---------------------------------------------------------------- export

def export(model, example, name: str, exporter: str) -> None:
    """Export ``model`` as OUT/NAME.onnx, stripped; ``exporter`` is legacy, legacy-kept (no constant
    folding: BN kept), dynamo (optimised) or dynamo-raw (``optimize=False``)."""
    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter.startswith("legacy"):
            torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=17,
                              do_constant_folding=exporter == "legacy", input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
            proto = onnx.load_from_string(buffer.getvalue())
        else:
            program = torch.onnx.export(model, (example,), None, dynamo=True, opset_version=18,
                                        optimize=exporter == "dynamo", input_names=["x"], output_names=["logits"],
                                        dynamic_shapes=({0: torch.export.Dim("N", min=1, max=4096)},))
            proto = program.model_proto
    strip_onnx(proto)
    onnx.save(proto, str(OUT / f"{name}.onnx"))


def make(name: str, build, exporter: str, layout=lambda x: x, x_scale: float = 1.0, positive_bn: bool = False,
         steps: int = STEPS, what: str = "") -> None:
    """Train ``build()`` on the digits in ``layout``, export it, check it in onnxruntime, write NAME.npz."""
    import onnx
    import onnxruntime
    import torch

    x, y = digits()
    x = layout(x * x_scale).astype(np.float32)
    torch.manual_seed(SEED)
    model = train(build(), torch.from_numpy(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN]), steps=steps, lr=3e-3,
                  seed=SEED)
    if positive_bn:  # a MaxPool in front of a BN commutes with it only when its scales are positive
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.abs_().add_(1e-3)
    x_test, y_test = x[-100:][:N_NPZ], y[-100:][:N_NPZ]
    export(model, torch.from_numpy(x_test[:2]), name, exporter)
    path = OUT / f"{name}.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": x_test})[0]
    np.testing.assert_allclose(logits, torch_logits(model, x_test), rtol=1e-4, atol=1e-4)
    np.savez_compressed(OUT / f"{name}.npz", x=x_test, y=y_test)
    accuracy = float((logits.argmax(1) == y_test).mean())
    size = path.stat().st_size + (OUT / f"{name}.npz").stat().st_size
    ops = " ".join(dict.fromkeys(node.op_type for node in onnx.load(str(path)).graph.node))
    ROWS.append(f"| `{name}` | {exporter} | {tuple(x_test.shape[1:])} | {accuracy:.0%} | {size:,} | {ops} | {what} |")
    print(f"{name:18s} {exporter:11s} acc {accuracy:.2f} {size:7d} B  {ops}")


def write_readme() -> None:
    """OUT/README.md: one row per fixture."""
    lines = ["# Graph-network fixtures", "",
             "Made by `tools/make_graph_fixtures.py` (see its docstring): small networks trained briefly on the",
             "bundled MNIST test digits (2x2-averaged to 14x14; the MNIST database, Y. LeCun, C. Cortes,",
             "C. J. C. Burges, via `ecc_hw/data`). `NAME.npz` holds 50 held-out images `x` in the model's input",
             "layout (float32) and labels `y`. Exporters: legacy = `dynamo=False` (opset 17), legacy-kept = the",
             "same without constant folding (BatchNormalization kept), dynamo = `dynamo=True` optimised, dynamo-raw",
             "= `optimize=False` (opset 18). Accuracies are on the 50 images.", "",
             "| Fixture | Exporter | Input | Acc. | Bytes (onnx + npz) | Ops | Exercises |",
             "|---|---|---|---|---|---|---|",
             *ROWS, ""]
    (OUT / "README.md").write_text("\n".join(lines))


def main() -> int:
    """Regenerate every fixture and the README."""
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for logger in ("torch.onnx", "torch.export", "torch._export", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    make("resnet_legacy", resnet, "legacy-kept", what="residual Add, 1x1 stride-2 projection shortcut, BN kept")
    make("resnet_dynamo", resnet, "dynamo-raw", what="the same network, new exporter unoptimised (BN kept)")
    make("densenet_legacy", densenet, "legacy", what="Concat of activations, 1x1 conv + AvgPool transition")
    make("densenet_dynamo", densenet, "dynamo", what="the same network, new exporter optimised")
    make("maxpool_legacy", maxpool_cnn, "legacy-kept", positive_bn=True,
         what="MaxPool after ReLU, before BN + ReLU (commuted), padded, ceil mode")
    make("depthwise_legacy", depthwise, "legacy-kept", steps=600,
         what="depthwise Conv (group = C), 1x1 pointwise, ReLU6 as Clip")
    make("input_norm_legacy", input_norm, "legacy", x_scale=255.0,
         what="(x - 33) / 78 in the model on 0..255 input, padded conv (per-neuron bias), ZeroPad2d + conv")
    make("nhwc_dynamo", nhwc, "dynamo", layout=lambda x: x.transpose(0, 2, 3, 1),
         what="(N, H, W, C) input, permute in the model, permute + flatten before the dense layer")
    make("mlp_legacy", mlp, "legacy-kept", layout=lambda x: x.reshape(len(x), -1),
         what="(N, 196) input, BatchNorm1d after Gemm")
    make("conv1d_dynamo", conv1d, "dynamo", layout=lambda x: x[:, 0],
         what="(N, C, L) input: Conv1d, BatchNorm1d, MaxPool1d, mean over L (ReduceMean)")
    make("chain_dynamo_raw", chain, "dynamo-raw",
         what="a chain, new exporter unoptimised: CastLike, Relu + Min clip, Clip, ceil-mode MaxPool")
    write_readme()
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(ROWS)} fixtures, {total:,} bytes")
    assert total < 2_000_000, total
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
