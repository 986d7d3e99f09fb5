"""Pooling on channel-major batches: the sum-pool of a composed AveragePool and max-pool nodes (5.4)."""
from __future__ import annotations

import numpy as np

from ..params import Pool
from .network import MaxPoolNode


def sum_pool(maps: np.ndarray, pool: Pool | None) -> np.ndarray:
    """Sum-pool a (B, C, H, W) batch over ``pool``'s cells (floor mode, no padding); identity for None."""
    if pool is None:
        return maps
    (kh, kw), (sh, sw) = pool.kernel, pool.stride
    ph, pw = pool.output_hw(*maps.shape[2:])
    out = None
    for i in range(kh):
        for j in range(kw):
            window = maps[:, :, i:i + sh * (ph - 1) + 1:sh, j:j + sw * (pw - 1) + 1:sw]
            out = window.copy() if out is None else np.add(out, window, out=out)
    return out


def _windows(node: MaxPoolNode, padded: np.ndarray) -> np.ndarray:
    """(B, C, Ho, Wo, kh, kw) views of the windows of ``node`` over its padded input."""
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    _, out_h, out_w = node.output_shape
    windows = np.lib.stride_tricks.sliding_window_view(padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return windows[:, :, :sh * (out_h - 1) + 1:sh, :sw * (out_w - 1) + 1:sw, ::dh, ::dw]


def _padded(node: MaxPoolNode, maps: np.ndarray, fill) -> np.ndarray:
    """The maps inside a border of ``fill``: the pads, and in ceil mode as much more as the last window needs."""
    top, left, bottom, right = node.padding
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    batch, channels, height, width = maps.shape
    _, out_h, out_w = node.output_shape
    total_h = max(height + top + bottom, (out_h - 1) * sh + dh * (kh - 1) + 1)
    total_w = max(width + left + right, (out_w - 1) * sw + dw * (kw - 1) + 1)
    padded = np.full((batch, channels, total_h, total_w), fill, dtype=maps.dtype)
    padded[:, :, top:top + height, left:left + width] = maps
    return padded


def max_pool(node: MaxPoolNode, x: np.ndarray) -> np.ndarray:
    """The max-pool node's outputs (B, neurons) for source rows ``x`` (B, C * H * W), channel-major;
    each window takes the maximum of its cells that are not padding."""
    maps = np.asarray(x).reshape(len(x), *node.input_shape)
    fill = -np.inf if np.issubdtype(maps.dtype, np.floating) else np.iinfo(maps.dtype).min
    return _windows(node, _padded(node, maps, fill)).max(axis=(4, 5)).reshape(len(x), -1)


def window_cells(node: MaxPoolNode) -> np.ndarray:
    """The number of non-padding cells in each pool neuron's window (channel-major, one per neuron)."""
    ones = np.ones((1, *node.input_shape), dtype=np.int64)
    return _windows(node, _padded(node, ones, 0)).sum(axis=(4, 5)).reshape(-1)
