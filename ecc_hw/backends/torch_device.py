"""PyTorch set-up for exact integer arithmetic: the device, the conversions, and the flags that keep every
convolution and product an exact sum of products (docs/backends.md).

Exact means: every map runs in a float dtype whose integers cover all its partial sums (the NumPy code's
proofs choose it), computed as a plain sum of products in any order. That excludes the algorithms that
transform their operands: NNPACK's Winograd and FFT convolutions on the CPU (disabled here), cuDNN's
FFT and Winograd convolutions (cuDNN is disabled for our maps, so CUDA convolutions are im2col plus
cuBLAS products) and TF32 products on CUDA (disabled).
"""
from __future__ import annotations

import contextlib

import numpy as np


def torch_module():
    """The ``torch`` module (imported here, on first use of a torch backend only)."""
    import torch

    return torch


def device_of(backend):
    """The ``torch.device`` of ``backend``."""
    return torch_module().device(backend.device)


@contextlib.contextmanager
def exact_mode(backend):
    """Within: no NNPACK, no TF32, cuDNN off for convolutions (CUDA) and deterministic algorithms; the
    previous global settings are restored on exit."""
    torch = torch_module()
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    precision = torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.backends.nnpack.flags(enabled=False))
            stack.enter_context(torch.backends.cudnn.flags(enabled=False, benchmark=False, deterministic=True,
                                                           allow_tf32=False))
            stack.enter_context(torch.no_grad())
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
        torch.set_float32_matmul_precision(precision)


TORCH_DTYPES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64", np.dtype(np.int32): "int32",
                np.dtype(np.int64): "int64", np.dtype(np.uint8): "uint8", np.dtype(bool): "bool"}


def torch_dtype(dtype):
    """The torch dtype of a NumPy dtype (float32/64, int32/64, uint8, bool)."""
    return getattr(torch_module(), TORCH_DTYPES[np.dtype(dtype)])


def tensor(array, device, dtype=None):
    """``array`` as a tensor on ``device`` (in ``dtype``, a NumPy dtype, when given)."""
    torch = torch_module()
    array = np.asarray(array)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def to_numpy(value) -> np.ndarray:
    """A tensor as a NumPy array (from any device)."""
    return value.detach().cpu().numpy()
