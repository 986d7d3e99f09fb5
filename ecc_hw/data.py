"""Data files: ``.npz`` with ``x`` (N, ...) in the model's own input layout (N, C, H, W for a chain) and
``y`` (N,), and the bundled MNIST subset."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import UserError

PACKAGE_DATA = Path(__file__).parent / "data"
BUNDLED_MODEL = PACKAGE_DATA / "mnist_cnn.onnx"
BUNDLED_TEST = PACKAGE_DATA / "mnist_test.npz"
BUNDLED_CALIB = PACKAGE_DATA / "mnist_calib.npz"


def read_arrays(path, expected: str) -> dict:
    """Every array of the .npz file ``path``; a one-line UserError naming the file (and ``expected``)
    when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file (expected {expected})")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"{path}: not a readable .npz file ({type(error).__name__})") from None


def load_npz(path, need_labels: bool = True, input_shape: tuple | None = None):
    """Return (x, y) from ``path``; y is None when absent and not needed. ``input_shape`` (no batch) is the
    shape each x must have, when known. One-line UserError on bad data."""
    path = Path(path)
    contents = read_arrays(path, ".npz with x (N, ...) in the model's input layout and y (N,)")
    if "x" not in contents:
        raise UserError(f"{path}: has no array 'x' (found {sorted(contents)}); expected x (N, C, H, W) or "
                        "the model's own input layout")
    x = contents["x"]
    if x.ndim < 2:
        raise UserError(f"{path}: x has shape {x.shape}; expected a batch (N, ...) in the model's input layout")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise UserError(f"{path}: x has shape {x.shape}, the network needs (N, {', '.join(map(str, input_shape))})")
    if not np.issubdtype(x.dtype, np.number) or (np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x))):
        raise UserError(f"{path}: x must be finite numbers (found NaN, infinity or non-numbers)")
    y = contents.get("y")
    if y is None:
        if need_labels:
            raise UserError(f"{path}: has no array 'y' of labels (N,)")
        return x, None
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{path}: y must be integer labels of shape ({len(x)},), got {y.dtype} {y.shape}")
    return x, y.astype(np.int64)
